import hashlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.settings import Settings

KEY = "sk-test-0123456789abcdef"


def test_refuses_to_start_with_auth_on_and_no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SQLGATE_API_KEYS", raising=False)
    with pytest.raises(ValidationError, match="no API keys"):
        Settings()


@pytest.mark.parametrize("placeholder", ["changeme", "short-key", "test"])
def test_refuses_placeholder_or_short_keys(placeholder: str) -> None:
    with pytest.raises(ValidationError, match="placeholder or shorter"):
        Settings(api_keys=placeholder)


def test_reads_keys_with_names_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLGATE_API_KEYS", f"alice={KEY}, {KEY}-2")
    entries = Settings().api_key_entries()
    assert entries[0].name == "alice"
    assert entries[1].name.startswith("key-")
    assert entries[0].digest == hashlib.sha256(KEY.encode()).digest()


def test_key_file_of_hashes(tmp_path: Path) -> None:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    key_file = tmp_path / "keys"
    key_file.write_text(f"# team keys\nbob:{digest}\n\n")
    entries = Settings(api_key_file=key_file).api_key_entries()
    assert [(e.name, e.digest.hex()) for e in entries] == [("bob", digest)]


def test_key_file_with_a_bad_line_names_the_line(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text("bob:nothex\n")
    with pytest.raises(ValidationError, match=r"keys:1"):
        Settings(api_key_file=key_file)


def test_auth_can_be_turned_off_explicitly() -> None:
    assert Settings(auth_enabled=False).api_key_entries() == ()


def test_optional_toml_config_file_below_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "sqlgate.toml"
    config.write_text('rate_limit_per_minute = 7\nmax_question_chars = 300\n')
    monkeypatch.setenv("SQLGATE_CONFIG_FILE", str(config))
    monkeypatch.setenv("SQLGATE_MAX_QUESTION_CHARS", "400")
    settings = Settings(api_keys=KEY)
    assert settings.rate_limit_per_minute == 7
    assert settings.max_question_chars == 400


def test_generation_parameters_come_from_the_config_file(tmp_path: Path) -> None:
    generation = Settings(api_keys=KEY).generation()
    assert generation.temperature == 0.0 and generation.max_tokens == 256 and generation.stop == ("<|im_end|>",)
    broken = tmp_path / "generation.toml"
    broken.write_text("temperature = 'hot'\n")
    with pytest.raises(ValidationError):
        Settings(api_keys=KEY, generation_config=broken)


def test_langfuse_secret_key_needs_its_public_key() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY is set without"):
        Settings(api_keys=KEY, langfuse_secret_key="sk-lf-1")


def test_langfuse_public_key_needs_its_secret() -> None:
    with pytest.raises(ValidationError, match="LANGFUSE_SECRET_KEY"):
        Settings(api_keys=KEY, langfuse_public_key="pk-lf-1")


LANGFUSE_SDK_VARIABLES = ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "LANGFUSE_BASE_URL", "LANGFUSE_HOST")
SQLGATE_LANGFUSE_VARIABLES = tuple(f"SQLGATE_{name}" for name in LANGFUSE_SDK_VARIABLES[:3])


@pytest.fixture
def clean_langfuse_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in LANGFUSE_SDK_VARIABLES + SQLGATE_LANGFUSE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("url_variable", ["LANGFUSE_BASE_URL", "LANGFUSE_HOST"])
def test_the_langfuse_sdks_own_variables_turn_tracing_on(clean_langfuse_env: pytest.MonkeyPatch,
                                                         url_variable: str) -> None:
    clean_langfuse_env.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-sdk")
    clean_langfuse_env.setenv("LANGFUSE_SECRET_KEY", "sk-lf-sdk")
    clean_langfuse_env.setenv(url_variable, "http://127.0.0.1:3000")
    settings = Settings(api_keys=KEY)
    assert settings.tracing_enabled
    assert settings.langfuse_public_key == "pk-lf-sdk"
    assert settings.langfuse_secret_key is not None and settings.langfuse_secret_key.get_secret_value() == "sk-lf-sdk"
    assert settings.langfuse_base_url == "http://127.0.0.1:3000"


def test_the_sqlgate_langfuse_variables_win_over_the_sdks(clean_langfuse_env: pytest.MonkeyPatch) -> None:
    for name in LANGFUSE_SDK_VARIABLES:
        clean_langfuse_env.setenv(name, f"sdk-{name}")
    for name in SQLGATE_LANGFUSE_VARIABLES:
        clean_langfuse_env.setenv(name, f"ours-{name}")
    settings = Settings(api_keys=KEY)
    assert settings.langfuse_public_key == "ours-SQLGATE_LANGFUSE_PUBLIC_KEY"
    assert settings.langfuse_secret_key is not None
    assert settings.langfuse_secret_key.get_secret_value() == "ours-SQLGATE_LANGFUSE_SECRET_KEY"
    assert settings.langfuse_base_url == "ours-SQLGATE_LANGFUSE_BASE_URL"


def test_without_any_langfuse_variable_tracing_stays_off(clean_langfuse_env: pytest.MonkeyPatch) -> None:
    assert not Settings(api_keys=KEY).tracing_enabled
