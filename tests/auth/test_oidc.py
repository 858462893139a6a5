"""The ID token checks, key rotation and discovery, with tokens signed by the test's own
keys (served by ``FakeIdP`` through the real HTTP client)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from joserfc.jws import JWSRegistry

from tests.support.clock import FrozenClock
from tests.support.idp import CLIENT_ID, ISSUER, FakeIdP, signing_key
from tokenledger.auth.oidc import KEYS_MIN_REFRESH_S, OidcClient, OidcError

NONCE = "nonce-of-this-attempt"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock("2026-11-25T12:00:00+00:00")


@pytest.fixture
def idp(clock: FrozenClock) -> FakeIdP:
    return FakeIdP(clock)


@pytest.fixture
def client(idp: FakeIdP) -> OidcClient:
    return idp.client()


def claims(clock: FrozenClock, **overrides: Any) -> dict[str, Any]:
    now = int(clock().timestamp())
    return {
        "iss": ISSUER,
        "sub": "person-1",
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 300,
        "nonce": NONCE,
        "email": "ada@example.com",
        **overrides,
    }


def refusal(client: OidcClient, token: str) -> str:
    with pytest.raises(OidcError) as refused:
        client.verify_id_token(token, nonce=NONCE)
    return refused.value.reason


def test_a_good_token_gives_its_claims(
    client: OidcClient, idp: FakeIdP, clock: FrozenClock
) -> None:
    verified = client.verify_id_token(idp.sign(claims(clock)), nonce=NONCE)
    assert verified == claims(clock)


def test_an_audience_list_with_our_client_id_is_accepted(
    client: OidcClient, idp: FakeIdP, clock: FrozenClock
) -> None:
    token = idp.sign(claims(clock, aud=[CLIENT_ID, "other-app"], azp=CLIENT_ID))
    assert client.verify_id_token(token, nonce=NONCE)["aud"] == [CLIENT_ID, "other-app"]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": 1_795_608_000 - 61}, "expired_id_token"),  # beyond the 60 s leeway
        ({"aud": "another-app"}, "wrong_audience"),
        ({"aud": ["another-app", "third-app"]}, "wrong_audience"),
        ({"iss": "https://evil.example.com"}, "wrong_issuer"),
        ({"nonce": "a nonce from another attempt"}, "wrong_nonce"),
        ({"nonce": None}, "invalid_id_token"),
        ({"iat": 1_795_608_000 + 3600}, "invalid_id_token"),  # issued in the future
        ({"sub": None}, "invalid_id_token"),
        ({"azp": "another-app"}, "invalid_id_token"),
    ],
)
def test_bad_claims_are_refused(
    client: OidcClient,
    idp: FakeIdP,
    clock: FrozenClock,
    overrides: dict[str, Any],
    reason: str,
) -> None:
    values = {k: v for k, v in claims(clock, **overrides).items() if v is not None}
    assert refusal(client, idp.sign(values)) == reason


def test_header_parameters_of_the_providers_own_are_accepted(
    client: OidcClient, clock: FrozenClock
) -> None:
    header = {"alg": "RS256", "kid": "key-1", "typ": "JWT", "x5t": "abc", "acme": "1"}
    registry = JWSRegistry(strict_check_header=False)
    token = jwt.encode(header, claims(clock), signing_key("key-1"), registry=registry)
    assert client.verify_id_token(token, nonce=NONCE)["sub"] == "person-1"


def test_a_token_expired_within_the_leeway_is_accepted(
    client: OidcClient, idp: FakeIdP, clock: FrozenClock
) -> None:
    token = idp.sign(claims(clock, exp=int(clock().timestamp()) - 30))
    assert client.verify_id_token(token, nonce=NONCE)["sub"] == "person-1"


def test_a_key_the_provider_does_not_publish_is_refused(
    client: OidcClient, clock: FrozenClock
) -> None:
    stranger = signing_key("not-published")
    token = jwt.encode({"alg": "RS256", "kid": "not-published"}, claims(clock), stranger)
    assert refusal(client, token) == "unknown_signing_key"


def test_a_signature_by_another_key_under_a_known_key_id_is_refused(
    client: OidcClient, clock: FrozenClock
) -> None:
    forged = jwt.encode({"alg": "RS256", "kid": "key-1"}, claims(clock), signing_key("forger"))
    assert refusal(client, forged) == "bad_signature"


def test_a_changed_payload_breaks_the_signature(
    client: OidcClient, idp: FakeIdP, clock: FrozenClock
) -> None:
    header, _payload, signature = idp.sign(claims(clock)).split(".")
    other = idp.sign(claims(clock, sub="admin")).split(".")[1]
    assert refusal(client, f"{header}.{other}.{signature}") == "bad_signature"


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_unsigned_and_symmetric_tokens_are_refused(client: OidcClient, clock: FrozenClock) -> None:
    unsigned = f"{_b64({'alg': 'none'})}.{_b64(claims(clock))}."
    assert refusal(client, unsigned) == "invalid_id_token"
    # HS256 keyed with something the attacker knows (here, the client id).
    hmac = jwt.encode({"alg": "HS256"}, claims(clock), OctKey.import_key(CLIENT_ID * 4))
    assert refusal(client, hmac) == "invalid_id_token"


def test_garbage_is_refused(client: OidcClient) -> None:
    assert refusal(client, "not.a.token") == "invalid_id_token"
    assert refusal(client, "") == "invalid_id_token"


def test_keys_are_cached_and_fetched_again_when_the_provider_rotates(
    client: OidcClient, idp: FakeIdP, clock: FrozenClock
) -> None:
    for _ in range(3):
        client.verify_id_token(idp.sign(claims(clock)), nonce=NONCE)
    assert idp.key_set_fetches == 1
    idp.rotate("key-2")
    clock.advance(seconds=KEYS_MIN_REFRESH_S)
    token = idp.sign(claims(clock))
    assert client.verify_id_token(token, nonce=NONCE)["sub"] == "person-1"
    assert idp.key_set_fetches == 2
    client.verify_id_token(idp.sign(claims(clock)), nonce=NONCE)
    assert idp.key_set_fetches == 2


def test_unknown_key_ids_do_not_make_us_hammer_the_provider(
    client: OidcClient, idp: FakeIdP, clock: FrozenClock
) -> None:
    client.verify_id_token(idp.sign(claims(clock)), nonce=NONCE)
    stranger = signing_key("not-published")
    for n in range(5):
        token = jwt.encode({"alg": "RS256", "kid": f"made-up-{n}"}, claims(clock), stranger)
        assert refusal(client, token) == "unknown_signing_key"
    assert idp.key_set_fetches == 1  # within KEYS_MIN_REFRESH_S of the last fetch


def test_a_withdrawn_key_stops_working_once_the_cache_is_old(
    client: OidcClient, idp: FakeIdP, clock: FrozenClock
) -> None:
    old = idp.sign(claims(clock, exp=int(clock().timestamp()) + 7200))
    client.verify_id_token(old, nonce=NONCE)
    idp.rotate("key-2")
    idp.published = [idp.current]  # key-1 withdrawn (say, it leaked)
    clock.advance(hours=1, seconds=1)
    assert refusal(client, old) == "unknown_signing_key"


def test_the_discovery_document_must_name_the_configured_issuer(
    client: OidcClient, idp: FakeIdP
) -> None:
    idp.metadata_overrides = {"issuer": "https://idp.example.com/realms/other"}
    with pytest.raises(OidcError) as refused:
        client.metadata()
    assert refused.value.reason == "provider_misconfigured"
    assert "realms/other" in refused.value.detail


def test_an_unreachable_provider_is_reported_as_such(clock: FrozenClock) -> None:
    idp = FakeIdP(clock, down=True)
    client = idp.client()
    with pytest.raises(OidcError) as refused:
        client.metadata()
    assert refused.value.reason == "provider_unavailable"


def test_the_authorization_url_carries_pkce_state_and_nonce(
    client: OidcClient, idp: FakeIdP
) -> None:
    url = client.authorization_url(
        redirect_uri="https://tl.example.com/sign-in/sso/callback",
        state="the-state",
        nonce="the-nonce",
        code_verifier="v" * 64,
    )
    # FakeIdP.authorize checks the request and keeps the challenge for the token call.
    callback = idp.authorize(url, {"sub": "person-1"})
    assert callback.startswith("https://tl.example.com/sign-in/sso/callback?code=")
    assert callback.endswith("&state=the-state")
    digest = hashlib.sha256(b"v" * 64).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert f"code_challenge={challenge}&code_challenge_method=S256" in url
    assert "nonce=the-nonce" in url


def test_the_end_session_url_names_the_client_and_where_to_come_back(
    client: OidcClient, idp: FakeIdP
) -> None:
    url = client.end_session_url(post_logout_redirect_uri="https://tl.example.com/sign-in")
    assert url == (
        f"{ISSUER}/logout?client_id={CLIENT_ID}"
        "&post_logout_redirect_uri=https%3A%2F%2Ftl.example.com%2Fsign-in"
    )
    idp.end_session = False
    assert idp.client().end_session_url(post_logout_redirect_uri="https://x/") is None
