"""What the sign-in page offers, and the rules that single sign-on adds to signing in
with a password. ``auth_pages`` calls these; the single sign-on routes are in
``sso_pages``.

* The page shows "Sign in with <provider>" when single sign-on is configured, and the
  password form unless local sign-in is off (then only at ``/sign-in?local=1``, for the
  break-glass admin).
* With local sign-in off, a password is accepted only from the break-glass admin.
* Signing out of an account that uses the provider offers the provider's sign-out too.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from tokenledger.auth import accounts, sso
from tokenledger.auth.oidc import OidcError
from tokenledger.clock import now_us
from tokenledger.web.context import AppContext
from tokenledger.web.deps import app_context, client_address

SIGNED_OUT = "/sign-in?done=signed-out"


def sign_in_choices(request: Request, *, password_form: bool = False) -> dict[str, Any]:
    """Template values for ``sign_in.html``: ``sso`` (the provider's name, and whether
    to offer its sign-out) and ``hide_password_form``. ``password_form`` keeps the form
    (a password attempt is being answered)."""
    settings = app_context(request).settings
    emergency = request.query_params.get("local") == "1" and bool(settings.break_glass_admin)
    choices: dict[str, Any] = {
        "hide_password_form": not (password_form or settings.local_sign_in or emergency),
        "sso": None,
    }
    if settings.sso_enabled:
        signed_out = request.query_params.get("from") == "sso"
        choices["sso"] = {"name": settings.oidc_provider_name, "signed_out": signed_out}
    return choices


def check_password_sign_in(request: Request, ctx: AppContext, email: str) -> None:
    """Raise the (audited) refusal when a password may not be used to sign in."""
    refusal = sso.password_sign_in_refused(
        ctx.db, ctx.settings, email=email, client=client_address(request), now_us=now_us(ctx.clock)
    )
    if refusal is not None:
        raise refusal


def signed_out_location(ctx: AppContext, account_id: int) -> str:
    """Where sign-out leads: the sign-in page, offering the provider's sign-out when the
    account signs in with the provider and the provider has an end-session address."""
    if ctx.oidc is None:
        return SIGNED_OUT
    account = accounts.get_account(ctx.db, account_id)
    if account is None or account.sso_subject is None:
        return SIGNED_OUT
    try:
        has_end_session = isinstance(ctx.oidc.metadata().get("end_session_endpoint"), str)
    except OidcError:
        return SIGNED_OUT
    return f"{SIGNED_OUT}&from=sso" if has_end_session else SIGNED_OUT
