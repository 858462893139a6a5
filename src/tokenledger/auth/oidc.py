"""OpenID Connect, our side (the relying party): the provider's discovery document and
keys, the authorization request with PKCE, the code exchange and every check of the
ID token. Built on Authlib (the OAuth client, the OIDC claim rules) and joserfc (JWS).

The discovery document is cached for an hour. The key set is cached until a token
names a key id it lacks: then it is fetched again (key rotation), but at most every
``KEYS_MIN_REFRESH_S`` so tokens with made-up key ids cannot make us hammer the
provider; it is also dropped after ``KEYS_MAX_AGE_S`` so a withdrawn key stops working.

Every failure is an ``OidcError`` whose ``reason`` is a short machine word that ends up
in the audit log (``expired_id_token``, ``wrong_audience``, ``unknown_signing_key``...).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx2
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from tokenledger.clock import Clock
from tokenledger.settings import Settings

METADATA_MAX_AGE_S = 3600
KEYS_MAX_AGE_S = 3600
KEYS_MIN_REFRESH_S = 10
# Clock skew tolerated between the provider and us for exp, iat and nbf.
LEEWAY_S = 60
HTTP_TIMEOUT_S = 10.0
# Asymmetric algorithms only: "none" and HMAC (keyed with the client secret) never.
SIGNING_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_CLAIM_REASONS = {"aud": "wrong_audience", "iss": "wrong_issuer", "nonce": "wrong_nonce"}


class OidcError(Exception):
    """The provider or its answer cannot be used; ``reason`` goes to the audit log,
    ``detail`` (never a token) to the log and the audit entry."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    issuer: str
    client_id: str
    client_secret: str
    scopes: str

    @classmethod
    def from_settings(cls, settings: Settings) -> ProviderConfig | None:
        if not settings.sso_enabled:
            return None
        return cls(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id.strip(),
            client_secret=settings.oidc_client_secret.get_secret_value(),
            scopes=" ".join(settings.oidc_scopes.split()),
        )


@dataclass(frozen=True, slots=True)
class Tokens:
    """What the token endpoint answered, the ID token already checked."""

    claims: dict[str, Any]
    access_token: str | None


class OidcClient:
    """One provider, as configured; thread-safe (routes run in a thread pool)."""

    def __init__(
        self,
        config: ProviderConfig,
        *,
        clock: Clock,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._transport = transport
        self._lock = threading.Lock()
        self._metadata: tuple[dict[str, Any], float] | None = None
        self._keys: tuple[KeySet, float] | None = None

    def _now_s(self) -> float:
        return self._clock().timestamp()

    def _http(self) -> httpx2.Client:
        return httpx2.Client(transport=self._transport, timeout=HTTP_TIMEOUT_S)

    def _get_json(self, url: str, what: str, **kwargs: Any) -> dict[str, Any]:
        try:
            with self._http() as http:
                response = http.get(url, **kwargs)
            response.raise_for_status()
            document = response.json()
        except (httpx2.HTTPError, ValueError) as exc:
            raise OidcError("provider_unavailable", f"{what} ({url}): {exc}") from exc
        if not isinstance(document, dict):
            raise OidcError("provider_unavailable", f"{what} ({url}) is not a JSON object")
        return document

    # Discovery and keys

    def metadata(self) -> dict[str, Any]:
        """The discovery document (cached); its issuer must be the configured one."""
        with self._lock:
            now = self._now_s()
            if self._metadata is None or now - self._metadata[1] > METADATA_MAX_AGE_S:
                self._metadata = (self._fetch_metadata(), now)
            return self._metadata[0]

    def _fetch_metadata(self) -> dict[str, Any]:
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = self._get_json(url, "the discovery document")
        if document.get("issuer") != self.config.issuer:
            raise OidcError(
                "provider_misconfigured",
                f"the discovery document names the issuer {document.get('issuer')!r}, "
                f"not {self.config.issuer!r} as configured",
            )
        for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(endpoint), str):
                problem = f"the discovery document has no {endpoint}"
                raise OidcError("provider_misconfigured", problem)
        return document

    def cached_metadata(self) -> dict[str, Any] | None:
        """The discovery document if it was fetched already (never fetches)."""
        with self._lock:
            return self._metadata[0] if self._metadata else None

    def _signing_keys(self, kid: str | None) -> KeySet:
        """The provider's keys, fetched again when ``kid`` is not among them (rotation)."""
        jwks_uri = self.metadata()["jwks_uri"]
        with self._lock:
            now = self._now_s()
            if self._keys is None or _should_refetch(*self._keys, kid=kid, now=now):
                self._keys = (self._fetch_keys(jwks_uri), now)
            keys = self._keys[0]
        if kid is not None and not _has_kid(keys, kid):
            raise OidcError("unknown_signing_key", f"no key {kid!r} in the provider's key set")
        return keys

    def _fetch_keys(self, jwks_uri: str) -> KeySet:
        document = self._get_json(jwks_uri, "the key set")
        try:
            return KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, KeyError, TypeError, ValueError) as exc:
            raise OidcError("provider_misconfigured", f"unusable key set: {exc}") from exc

    # The flow

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        """Where to send the browser: the code flow with PKCE (S256), state and nonce."""
        endpoint = self.metadata()["authorization_endpoint"]
        with self._oauth(redirect_uri) as client:
            url, _state = client.create_authorization_url(
                endpoint, state=state, code_verifier=code_verifier, nonce=nonce
            )
        return str(url)

    def exchange_code(
        self, *, code: str, code_verifier: str, redirect_uri: str, nonce: str
    ) -> Tokens:
        """Trade the code for tokens and check the ID token (OidcError otherwise)."""
        endpoint = self.metadata()["token_endpoint"]
        try:
            with self._oauth(redirect_uri) as client:
                token = client.fetch_token(
                    endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                )
        except OAuthError as exc:
            reason = "code_rejected" if exc.error == "invalid_grant" else "provider_error"
            said = f"{exc.error}: {exc.description}" if exc.description else str(exc.error)
            raise OidcError(reason, f"token endpoint: {said}") from exc
        except (httpx2.HTTPError, ValueError) as exc:
            raise OidcError("provider_unavailable", f"token endpoint: {exc}") from exc
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("invalid_id_token", "the token endpoint sent no ID token")
        access_token = token.get("access_token")
        access_token = access_token if isinstance(access_token, str) else None
        claims = self.verify_id_token(id_token, nonce=nonce, access_token=access_token)
        return Tokens(claims, access_token)

    def _oauth(self, redirect_uri: str) -> OAuth2Client:
        return OAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret or None,
            token_endpoint_auth_method=self._auth_method(),
            scope=self.config.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            transport=self._transport,
            timeout=HTTP_TIMEOUT_S,
        )

    def _auth_method(self) -> str:
        if not self.config.client_secret:
            return "none"
        supported = self.metadata().get("token_endpoint_auth_methods_supported")
        if not isinstance(supported, list) or "client_secret_basic" in supported:
            return "client_secret_basic"
        return "client_secret_post" if "client_secret_post" in supported else "client_secret_basic"

    def verify_id_token(
        self, id_token: str, *, nonce: str, access_token: str | None = None
    ) -> dict[str, Any]:
        """The claims of ``id_token`` once its signature (a provider key, an allowed
        algorithm), issuer, audience, expiry, issue time and nonce are checked."""
        try:
            header = jws.extract_compact(id_token.encode()).headers()
        except (JoseError, ValueError) as exc:
            raise OidcError("invalid_id_token", f"not a signed JWT: {exc}") from exc
        algorithm = header.get("alg")
        allowed = self._algorithms()
        if algorithm not in allowed:
            raise OidcError(
                "invalid_id_token", f"signed with {algorithm!r}, expected one of {sorted(allowed)}"
            )
        kid = header.get("kid")
        keys = self._signing_keys(kid if isinstance(kid, str) else None)
        try:
            # Like Authlib's client: header parameters beyond the registered ones (some
            # providers add their own) do not make a token invalid.
            registry = JWSRegistry(algorithms=[str(algorithm)], strict_check_header=False)
            token = jwt.decode(id_token, keys, registry=registry)
        except InvalidKeyIdError as exc:
            raise OidcError("unknown_signing_key", str(exc)) from exc
        except BadSignatureError as exc:
            raise OidcError("bad_signature", "the signature does not match the key") from exc
        except (JoseError, ValueError) as exc:
            raise OidcError("invalid_id_token", str(exc)) from exc
        claims = CodeIDToken(
            token.claims,
            token.header,
            {
                "iss": {"essential": True, "value": self.metadata()["issuer"]},
                "aud": {"essential": True, "value": self.config.client_id},
            },
            {"nonce": nonce, "client_id": self.config.client_id, "access_token": access_token},
        )
        try:
            claims.validate(now=int(self._now_s()), leeway=LEEWAY_S)
        except ExpiredTokenError as exc:
            raise OidcError("expired_id_token", f"exp {claims.get('exp')}") from exc
        except InvalidClaimError as exc:
            reason = _CLAIM_REASONS.get(exc.claim, "invalid_id_token")
            value = str(claims.get(exc.claim))[:200]
            raise OidcError(reason, f"claim {exc.claim}: {value}") from exc
        except ClaimError as exc:
            raise OidcError("invalid_id_token", str(exc)) from exc
        return dict(claims)

    def _algorithms(self) -> frozenset[str]:
        announced = self.metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
        return SIGNING_ALGORITHMS & {str(name) for name in announced}

    def userinfo(self, access_token: str, *, subject: str) -> dict[str, Any]:
        """The UserInfo claims (for claims the ID token lacks); {} without an endpoint.
        They must be about the ID token's subject."""
        endpoint = self.metadata().get("userinfo_endpoint")
        if not isinstance(endpoint, str):
            return {}
        headers = {"Authorization": f"Bearer {access_token}"}
        claims = self._get_json(endpoint, "the userinfo endpoint", headers=headers)
        if claims.get("sub") != subject:
            raise OidcError("invalid_id_token", "the userinfo answer is about another subject")
        return claims

    def end_session_url(self, *, post_logout_redirect_uri: str) -> str | None:
        """The provider's sign-out address (RP-initiated logout), if it has one."""
        endpoint = self.metadata().get("end_session_endpoint")
        if not isinstance(endpoint, str):
            return None
        query = urlencode(
            {
                "client_id": self.config.client_id,
                "post_logout_redirect_uri": post_logout_redirect_uri,
            }
        )
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys)


def _should_refetch(keys: KeySet, fetched_s: float, *, kid: str | None, now: float) -> bool:
    """Old keys are dropped; an unknown key id fetches again, but not too often."""
    if now - fetched_s > KEYS_MAX_AGE_S:
        return True
    unknown = kid is not None and not _has_kid(keys, kid)
    return unknown and now - fetched_s >= KEYS_MIN_REFRESH_S
