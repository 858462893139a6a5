"""Single sign-on routes: off to the identity provider, back from it, and the
provider's sign-out. The logic is in ``auth.sso`` and ``auth.oidc``.

The redirect URI to register at the provider is ``<this site>/sign-in/sso/callback``,
as the browser sees this site (behind trusted proxies, their forwarded scheme and host).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from tokenledger.auth import csrf, sso
from tokenledger.auth.oidc import OidcError
from tokenledger.clock import now_us
from tokenledger.web import cookies, proxy
from tokenledger.web.auth_pages import limits, local_path, session_policy
from tokenledger.web.deps import Ctx, client_address, current_viewer, session_token
from tokenledger.web.error_pages import error_page
from tokenledger.web.sign_in_options import SIGNED_OUT

router = APIRouter(include_in_schema=False)

CALLBACK = "/sign-in/sso/callback"
_NO_STORE = {"Cache-Control": "no-store"}


def origin(request: Request) -> str:
    """This site as the browser sees it: ``https://tokenledger.example.com``."""
    networks = request.app.state.ctx.settings.trusted_proxy_networks
    return f"{proxy.scheme(request.scope, networks)}://{proxy.host(request.scope, networks)}"


def _not_configured(request: Request) -> Response:
    return error_page(
        request,
        status=404,
        title="Single sign-on is off",
        message="This TokenLedger has no identity provider configured. Sign in with your "
        "e-mail address and password.",
    )


@router.get("/sign-in/sso")
def sso_start(request: Request, ctx: Ctx, next: str | None = None) -> Response:
    """Send the browser to the provider (the code flow with PKCE, state and nonce)."""
    provider = ctx.oidc
    if provider is None:
        return _not_configured(request)
    if current_viewer(request) is not None:
        return RedirectResponse(local_path(next), status_code=303)
    if not request.state.csrf_token:  # an API client (Authorization header), no browser
        return error_page(
            request,
            status=400,
            title="Sign in from a browser",
            message="Single sign-on starts in a browser, without an Authorization header.",
        )
    try:
        url = sso.start(
            ctx.db,
            provider,
            browser=request.state.csrf_token,
            redirect_uri=origin(request) + CALLBACK,
            next_path=local_path(next),
            now_us=now_us(ctx.clock),
        )
    except OidcError as exc:
        refusal = sso.SsoRefused(exc.reason, provider=ctx.settings.oidc_provider_name)
        return error_page(
            request, status=refusal.status, title=refusal.title, message=refusal.message
        )
    return RedirectResponse(url, status_code=303, headers=_NO_STORE)


@router.get(CALLBACK)
def sso_callback(
    request: Request, ctx: Ctx, state: str = "", code: str = "", error: str = ""
) -> Response:
    """The provider's answer: sign in, or a page saying why not."""
    provider = ctx.oidc
    if provider is None:
        return _not_configured(request)
    try:
        signed_in, next_path = sso.finish(
            ctx.db,
            provider,
            sso.Policy.from_settings(ctx.settings),
            sso.Answer(state=state, code=code, error=error),
            sso.Attempt(
                browser=_browser(request),
                client=client_address(request),
                previous_token=session_token(request),
            ),
            now_us=now_us(ctx.clock),
            limits=limits(ctx.settings),
            session_policy=session_policy(ctx.settings),
        )
    except sso.SsoRefused as exc:
        headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
        return error_page(
            request, status=exc.status, title=exc.title, message=exc.message, headers=headers
        )
    response = RedirectResponse(local_path(next_path), status_code=303, headers=_NO_STORE)
    cookies.set_session(response, signed_in.token, secure=request.state.secure_cookies)
    return response


def _browser(request: Request) -> str:
    """What binds an attempt to the browser that started it: the CSRF token of its
    pre-session cookie (read from the cookie, so it holds even if a session started in
    another tab meanwhile)."""
    secure = request.state.secure_cookies
    value = request.cookies.get(cookies.name(cookies.PRE_SESSION, secure=secure))
    if not value or len(value) > 100:
        return ""
    return csrf.token_for(value)


@router.get("/sign-out/sso")
def sso_sign_out(request: Request, ctx: Ctx) -> Response:
    """After signing out here: on to the provider's sign-out, which comes back to the
    sign-in page."""
    provider = ctx.oidc
    location = None
    if provider is not None:
        try:
            location = provider.end_session_url(
                post_logout_redirect_uri=origin(request) + SIGNED_OUT
            )
        except OidcError:
            location = None
    return RedirectResponse(location or SIGNED_OUT, status_code=303, headers=_NO_STORE)
