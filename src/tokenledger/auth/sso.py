"""Signing in with the identity provider (OpenID Connect), from the first redirect to
a session, and every refusal on the way.

``start`` records the attempt and gives the provider's authorization URL; ``finish``
checks the provider's answer (state, then the code exchange and the ID token in
``oidc``), reads the e-mail address and groups, maps the groups to a role and signs the
account in, creating it on first use (``sso_accounts``). The groups are read again at
every sign-in, so a changed group changes the role at the next one, and a person in no
mapped group is refused (and their open sessions end).

Every refusal is an ``SsoRefused`` with a message for the person, and is written to the
audit log (``sign_in_failed``, ``"method": "single sign-on"``, a ``reason``). Refusals
count as failed sign-ins for the client address's throttle, like wrong passwords.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from tokenledger.auth import accounts, audit, sessions, signin, sso_accounts, sso_flows, throttle
from tokenledger.auth.oidc import OidcClient, OidcError
from tokenledger.settings import Settings, split_list
from tokenledger.store.database import Database
from tokenledger.store.schema import accounts as accounts_table

METHOD = "single sign-on"
ANONYMOUS = "(single sign-on)"
_MAX_GROUPS_AUDITED = 20


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    title: str
    message: str  # may name {provider}
    counts_as_failure: bool = True


_VERIFY = "could not be verified, so it cannot sign you in. Tell your administrator."
REFUSALS: dict[str, Refusal] = {
    "wrong_state": Refusal(
        400,
        "Sign-in not completed",
        "This answer from {provider} does not belong to a sign-in started in this browser "
        "in the last 10 minutes. Start again from the sign-in page.",
    ),
    "replayed_code": Refusal(
        400,
        "Sign-in not completed",
        "This answer from {provider} was used already: each one works once. Start again "
        "from the sign-in page.",
    ),
    "code_rejected": Refusal(
        400,
        "Sign-in not completed",
        "{provider} did not accept the sign-in code (it was used already or has expired). "
        "Start again from the sign-in page.",
    ),
    "provider_error": Refusal(
        401, "Sign-in not completed", "{provider} did not sign you in ({detail})."
    ),
    "expired_id_token": Refusal(
        401,
        "Sign-in not completed",
        "The sign-in token from {provider} had expired when it arrived. If this happens "
        "again, this server's clock may be wrong: tell your administrator.",
    ),
    "wrong_audience": Refusal(
        401,
        "Sign-in refused",
        "The sign-in token from {provider} was issued for another application. Tell your "
        "administrator (the client id may be wrong).",
    ),
    "unknown_signing_key": Refusal(
        401,
        "Sign-in refused",
        "The sign-in token is signed with a key that {provider} does not publish. Tell "
        "your administrator.",
    ),
    "wrong_issuer": Refusal(401, "Sign-in refused", "The sign-in token from {provider} " + _VERIFY),
    "wrong_nonce": Refusal(401, "Sign-in refused", "The sign-in token from {provider} " + _VERIFY),
    "bad_signature": Refusal(
        401, "Sign-in refused", "The sign-in token from {provider} " + _VERIFY
    ),
    "invalid_id_token": Refusal(
        401, "Sign-in refused", "The sign-in token from {provider} " + _VERIFY
    ),
    "email_missing": Refusal(
        403,
        "Sign-in refused",
        "{provider} did not send your e-mail address. Tell your administrator (the "
        "`email` scope or claim is missing).",
    ),
    "email_not_verified": Refusal(
        403,
        "Sign-in refused",
        "{provider} says your e-mail address is not verified. Verify it there, then sign in again.",
    ),
    "email_domain": Refusal(
        403,
        "Access refused",
        "Addresses at {detail} cannot sign in to this TokenLedger. Sign in with your work account.",
    ),
    "no_mapped_group": Refusal(
        403,
        "Access refused",
        "You signed in with {provider}, but you are in none of the groups that give access "
        "to TokenLedger. Ask your administrator to add you to one.",
    ),
    "disabled": Refusal(
        403,
        "Access refused",
        "Your TokenLedger account is disabled. Ask an admin to enable it.",
    ),
    "email_taken": Refusal(
        409,
        "Access refused",
        "Another TokenLedger account already has your e-mail address, for a different "
        "{provider} identity. Ask an admin to sort it out.",
    ),
    "throttled": Refusal(
        429,
        "Sign-in paused",
        "Too many failed sign-in attempts from your address. Try again in {detail}.",
        counts_as_failure=False,
    ),
    "provider_unavailable": Refusal(
        502,
        "Sign-in not completed",
        "{provider} cannot be reached right now. Try again in a few minutes; if it "
        "persists, tell your administrator.",
        counts_as_failure=False,
    ),
    "provider_misconfigured": Refusal(
        502,
        "Sign-in not completed",
        "Single sign-on is not set up correctly: {provider}'s answer cannot be used. Tell "
        "your administrator (the audit log has the details).",
        counts_as_failure=False,
    ),
}


class SsoRefused(Exception):
    """A refused sign-in: ``status``, ``title`` and ``message`` for the page."""

    def __init__(
        self, reason: str, *, provider: str, detail: str = "", retry_after_s: int | None = None
    ) -> None:
        refusal = REFUSALS[reason]
        self.reason = reason
        self.status = refusal.status
        self.title = refusal.title
        self.message = refusal.message.format(provider=provider, detail=detail)
        self.retry_after_s = retry_after_s
        super().__init__(f"{reason}: {self.message}")


@dataclass(frozen=True, slots=True)
class Policy:
    """Who may sign in with the provider, and with which role."""

    provider_name: str
    groups_claim: str
    admin_groups: frozenset[str]
    viewer_groups: frozenset[str]
    allowed_domains: frozenset[str]
    require_verified_email: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            provider_name=settings.oidc_provider_name,
            groups_claim=settings.oidc_groups_claim.strip(),
            admin_groups=frozenset(split_list(settings.oidc_admin_groups)),
            viewer_groups=frozenset(split_list(settings.oidc_viewer_groups)),
            allowed_domains=frozenset(
                domain.lower().lstrip("@") for domain in split_list(settings.oidc_allowed_domains)
            ),
            require_verified_email=settings.oidc_require_verified_email,
        )

    def role_for(self, groups: Iterable[str]) -> accounts.Role | None:
        """``admin`` if any group maps to it, else ``viewer`` if one maps to that."""
        found = set(groups)
        if found & self.admin_groups:
            return "admin"
        if found & self.viewer_groups:
            return "viewer"
        return None


@dataclass(frozen=True, slots=True)
class Answer:
    """The query of the provider's redirect back to us."""

    state: str
    code: str
    error: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """Where an answer comes from: the browser (its pre-session CSRF token) and its
    address, and the session it may already have."""

    browser: str
    client: str
    previous_token: str | None = None


def start(
    db: Database,
    provider: OidcClient,
    *,
    browser: str,
    redirect_uri: str,
    next_path: str,
    now_us: int,
) -> str:
    """Record a sign-in attempt; returns the provider URL to send the browser to."""
    flow = sso_flows.begin(
        db, browser=browser, redirect_uri=redirect_uri, next_path=next_path, now_us=now_us
    )
    return provider.authorization_url(
        redirect_uri=redirect_uri,
        state=flow.state,
        nonce=flow.nonce,
        code_verifier=flow.code_verifier,
    )


def finish(
    db: Database,
    provider: OidcClient,
    policy: Policy,
    answer: Answer,
    attempt: Attempt,
    *,
    now_us: int,
    limits: throttle.Limits,
    session_policy: sessions.SessionPolicy,
) -> tuple[signin.SignedIn, str]:
    """Check the provider's answer and sign the person in; returns the new session and
    the path to go to. SsoRefused (audited) for every reason not to."""
    # The attempt is reserved (counted as a failure) before the answer is checked, as a
    # password sign-in is; while paused, refused and counted under the pause's one
    # audit entry. The key stands for the client: no e-mail is known yet.
    reserved = throttle.reserve(
        db,
        email=f"sso:{attempt.client}",
        client=attempt.client,
        actor=ANONYMOUS,
        now_us=now_us,
        limits=limits,
    )
    if isinstance(reserved, throttle.Pause):
        wait = reserved.retry_after_s
        raise SsoRefused(
            "throttled",
            provider=policy.provider_name,
            detail=signin.wait_text(wait),
            retry_after_s=wait,
        )
    email: str | None = None
    identity: sso_accounts.Identity | None = None
    groups: tuple[str, ...] = ()
    try:
        flow = sso_flows.consume(db, state=answer.state, browser=attempt.browser, now_us=now_us)
        claims = _claims(provider, policy, answer, flow)
        email = _email(claims)
        identity = _identity(claims, email, provider, policy)
        groups = groups_in(claims, policy.groups_claim)
        role = policy.role_for(groups)
        if role is None:
            raise _Refused("no_mapped_group")
        signed_in = _sign_in(db, identity, role, attempt, now_us=now_us, policy=session_policy)
    except (sso_flows.FlowRefused, OidcError, sso_accounts.AccountRefused, _Refused) as exc:
        detail = getattr(exc, "detail", "")
        _audit_refusal(
            db,
            exc.reason,
            attempt,
            email=email,
            identity=identity,
            groups=groups,
            detail=detail,
            now_us=now_us,
        )
        if not REFUSALS[exc.reason].counts_as_failure:
            throttle.release(db, reserved)
        raise SsoRefused(exc.reason, provider=policy.provider_name, detail=detail) from exc
    throttle.release(db, reserved)
    return signed_in, flow.next_path


class _Refused(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


_ERROR_CODE = re.compile(r"[^a-z0-9_]")


def _claims(
    provider: OidcClient, policy: Policy, answer: Answer, flow: sso_flows.Flow
) -> dict[str, Any]:
    """The ID token's claims, completed from the UserInfo endpoint when the ID token
    lacks the e-mail address or the groups (the ID token's values win)."""
    if answer.error or not answer.code:
        # The error code is the provider's (e.g. access_denied); shown, so only a word.
        code = _ERROR_CODE.sub("", answer.error.lower())[:64] or "no code in the answer"
        raise _Refused("provider_error", code)
    if len(answer.code) > 4096:
        raise _Refused("provider_error", "the code is too long")
    tokens = provider.exchange_code(
        code=answer.code,
        code_verifier=flow.code_verifier,
        redirect_uri=flow.redirect_uri,
        nonce=flow.nonce,
    )
    claims = tokens.claims
    lacks = "email" not in claims or claim_at(claims, policy.groups_claim) is None
    if lacks and tokens.access_token:
        claims = {**provider.userinfo(tokens.access_token, subject=claims["sub"]), **claims}
    return claims


def _email(claims: dict[str, Any]) -> str:
    email = claims.get("email")
    try:
        return accounts.normalize_email(email if isinstance(email, str) else "")
    except accounts.AccountError:
        raise _Refused("email_missing") from None


def _identity(
    claims: dict[str, Any], email: str, provider: OidcClient, policy: Policy
) -> sso_accounts.Identity:
    """Who signed in, once the address is verified and in an allowed domain."""
    if policy.require_verified_email and claims.get("email_verified") not in (True, "true"):
        raise _Refused("email_not_verified")
    domain = email.rpartition("@")[2]
    if policy.allowed_domains and domain not in policy.allowed_domains:
        raise _Refused("email_domain", domain)
    name = claims.get("name")
    return sso_accounts.Identity(
        issuer=provider.config.issuer,
        subject=str(claims["sub"]),
        email=email,
        name=name if isinstance(name, str) else "",
    )


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """The claim ``path``: a top-level name, or a dotted path into nested objects
    (``realm_access.roles``)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def groups_in(claims: dict[str, Any], path: str) -> tuple[str, ...]:
    """The person's groups: a list of strings, or a single string."""
    value = claim_at(claims, path)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str))
    return ()


def _sign_in(
    db: Database,
    identity: sso_accounts.Identity,
    role: accounts.Role,
    attempt: Attempt,
    *,
    now_us: int,
    policy: sessions.SessionPolicy,
) -> signin.SignedIn:
    with db.write() as conn:
        account = sso_accounts.account_for_in(
            conn, identity, role=role, now_us=now_us, client=attempt.client
        )
        if attempt.previous_token:
            sessions.revoke_in(conn, attempt.previous_token)
        sessions.prune_in(conn, now_us=now_us, policy=policy)
        token = sessions.create_in(conn, account_id=account.id, now_us=now_us)
        conn.execute(
            update(accounts_table)
            .where(accounts_table.c.id == account.id)
            .values(last_sign_in_us=now_us)
        )
        audit.record_in(
            conn,
            actor=account.email,
            action=audit.SIGN_IN,
            details={"method": METHOD, "role": role},
            now_us=now_us,
            client=attempt.client,
        )
    return signin.SignedIn(account, token)


def _audit_refusal(
    db: Database,
    reason: str,
    attempt: Attempt,
    *,
    email: str | None = None,
    identity: sso_accounts.Identity | None = None,
    groups: tuple[str, ...] = (),
    detail: str = "",
    now_us: int,
) -> None:
    details: dict[str, Any] = {"method": METHOD, "reason": reason}
    if detail:
        details["detail"] = detail[:500]
    if reason == "no_mapped_group":
        details["groups"] = list(groups[:_MAX_GROUPS_AUDITED])
    with db.write() as conn:
        if reason == "no_mapped_group" and identity is not None:
            sso_accounts.end_sessions_in(conn, identity)
        audit.record_in(
            conn,
            actor=email or ANONYMOUS,
            action=audit.SIGN_IN_FAILED,
            details=details,
            now_us=now_us,
            client=attempt.client,
        )


def password_sign_in_refused(
    db: Database, settings: Settings, *, email: str, client: str, now_us: int
) -> signin.SignInRefused | None:
    """With local sign-in turned off, only the break-glass admin may use a password:
    the refusal (audited) for anyone else, or None."""
    if settings.local_sign_in:
        return None
    if settings.break_glass_admin and email.strip().lower() == settings.break_glass_admin:
        account = accounts.find_account(db, email)
        if account is None or account.is_admin:
            return None  # a wrong password is refused (and throttled) as usual
    try:
        actor = accounts.normalize_email(email)
    except accounts.AccountError:
        actor = "(not an e-mail address)"
    audit.record(
        db,
        actor=actor,
        action=audit.SIGN_IN_FAILED,
        details={"reason": "password_sign_in_off"},
        now_us=now_us,
        client=client,
    )
    return signin.SignInRefused(
        f"Password sign-in is turned off. Sign in with {settings.oidc_provider_name}.",
        status=403,
    )


def break_glass_problem(db: Database, settings: Settings) -> str | None:
    """What is wrong with the way back in when local sign-in is off (None if nothing):
    without a usable break-glass admin, a provider outage locks everyone out."""
    if settings.local_sign_in:
        return None
    if not settings.break_glass_admin:
        return (
            "local sign-in is off and TOKENLEDGER_BREAK_GLASS_ADMIN is not set: if the "
            "identity provider fails, nobody can sign in"
        )
    account = accounts.find_account(db, settings.break_glass_admin)
    if account is None or not (account.is_admin and account.enabled and account.has_password):
        return (
            f"the break-glass admin {settings.break_glass_admin} is not an enabled admin "
            "account with a password: create it with `tokenledger accounts create "
            f"--email {settings.break_glass_admin} --role admin`"
        )
    return None
