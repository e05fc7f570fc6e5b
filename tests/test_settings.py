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


# ---- API-key entries: `name=key` only when unambiguous (docs/contract.md, CONTRACTS) ----------------------------

BASE64_KEY = "c2stc3FsZ2F0ZS1iYXNlNjQta2V5LTAxMjM0NQ=="  # base64 padding: ends in `==`
BASE64_INNER = "a+b/cdefgh=ijklmnopqrstuvwxyz0123"  # `=` inside, and the part before it is no plain name


@pytest.mark.parametrize("key", [BASE64_KEY, BASE64_KEY[:-1], BASE64_INNER])
def test_a_key_containing_equals_signs_is_one_whole_key(key: str) -> None:
    from gateway.auth import KeyRing

    entries = Settings(api_keys=key).api_key_entries()
    assert [e.digest for e in entries] == [hashlib.sha256(key.encode()).digest()]
    # Its name is a digest prefix, never a piece of the key.
    assert entries[0].name.startswith("key-") and entries[0].name[4:] not in key
    ring = KeyRing(entries, enabled=True)
    assert ring.identify(key) == entries[0].name
    with pytest.raises(Exception, match="Incorrect API key"):
        ring.identify(key.partition("=")[2] or "x" * 16)


@pytest.mark.parametrize(
    ("entry", "name", "key"),
    [
        (f"alice={KEY}", "alice", KEY),
        (f"team.ops-1_a={BASE64_KEY}", "team.ops-1_a", BASE64_KEY),
        (f"{'n' * 65}={KEY}", None, f"{'n' * 65}={KEY}"),  # a name over 64 characters is no name
        ("bob=short-key-but-whole-entry-long", "bob", "short-key-but-whole-entry-long"),
        ("bob=short-key", None, "bob=short-key"),  # what follows `=` is no whole key: the entry is
    ],
)
def test_name_equals_key_is_split_only_when_unambiguous(entry: str, name: str | None, key: str) -> None:
    from gateway.settings import split_key_entry

    assert split_key_entry(entry) == (name, key)


def test_a_key_ending_in_double_equals_starts_without_a_misleading_message() -> None:
    # Today's split took "=" as the key and refused it as "a placeholder or shorter than 16 characters".
    assert len(Settings(api_keys=f"{BASE64_KEY}, alice={KEY}").api_key_entries()) == 2


# ---- settings that would fail every request later are refused at start-up ---------------------------------------

def test_an_unknown_sql_dialect_stops_start_up_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="SQLGATE_SQL_DIALECT"):
        Settings(api_keys=KEY, sql_dialect="sqllite")
    assert Settings(api_keys=KEY, sql_dialect="DuckDB").sql_dialect == "duckdb"


def test_python_m_gateway_refuses_an_unknown_dialect_with_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    import gateway.__main__
    from gateway.__main__ import main

    def must_not_serve(*_: object, **__: object) -> None:
        raise AssertionError("started serving with a bad dialect")

    monkeypatch.setattr(gateway.__main__, "serve", must_not_serve)
    monkeypatch.setenv("SQLGATE_API_KEYS", KEY)
    monkeypatch.setenv("SQLGATE_SQL_DIALECT", "postgress")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "SQLGATE_SQL_DIALECT" in err and "postgress" in err
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
