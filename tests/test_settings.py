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


def test_default_dialect_must_be_one_the_gateway_offers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLGATE_SQL_DIALECT", " Postgres ")
    assert Settings(api_keys=KEY).sql_dialect == "postgres"
    monkeypatch.setenv("SQLGATE_SQL_DIALECT", "klingon")
    with pytest.raises(ValidationError, match="SQLGATE_SQL_DIALECT 'klingon' is not one of"):
        Settings(api_keys=KEY)
