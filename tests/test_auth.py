import pytest

from gateway.auth import KeyRing
from gateway.errors import AuthenticationFailed
from gateway.settings import ApiKey, digest_key


def ring() -> KeyRing:
    return KeyRing((ApiKey("old", digest_key("sk-old-aaaaaaaaaaaaaaaa")),
                    ApiKey("new", digest_key("sk-new-bbbbbbbbbbbbbbbb"))), enabled=True)


def test_both_keys_of_a_rotation_are_accepted_and_named() -> None:
    assert ring().identify("sk-old-aaaaaaaaaaaaaaaa") == "old"
    assert ring().identify("sk-new-bbbbbbbbbbbbbbbb") == "new"


def test_wrong_and_missing_keys_are_refused_with_distinct_codes() -> None:
    with pytest.raises(AuthenticationFailed) as wrong:
        ring().identify("sk-old-aaaaaaaaaaaaaaaX")
    assert wrong.value.code == "invalid_api_key"
    with pytest.raises(AuthenticationFailed) as missing:
        ring().identify(None)
    assert missing.value.code == "missing_api_key"


def test_disabled_auth_names_everyone_anonymous() -> None:
    assert KeyRing((), enabled=False).identify(None) == "anonymous"


def test_rate_buckets_are_per_key_with_auth_and_per_client_address_without() -> None:
    assert ring().rate_bucket("old", "10.0.0.1") == ring().rate_bucket("old", "10.0.0.2") == "old"
    anonymous = KeyRing((), enabled=False)
    assert anonymous.rate_bucket("anonymous", "10.0.0.1") != anonymous.rate_bucket("anonymous", "10.0.0.2")
