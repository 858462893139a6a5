"""Signing in and out, and the signed-in person's own account page."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from tokenledger.auth import accounts, passwords, signin, throttle
from tokenledger.auth.sessions import SessionPolicy
from tokenledger.clock import now_us
from tokenledger.settings import Settings
from tokenledger.web import cookies, sign_in_options
from tokenledger.web.deps import Ctx, PageViewer, client_address, current_viewer, session_token
from tokenledger.web.templating import render

router = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form()]
HOME = "/"
_NOTICES = {
    "signed-out": "You are signed out.",
    "profile": "Your profile is saved.",
    "password": "Your password is changed. Your other sessions were signed out.",
}


def local_path(target: str | None) -> str:
    """``target`` if it is a path on this site, else ``/``: the sign-in page never
    sends anyone to another site (``//evil``, ``/\\evil``, ``https://...``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return HOME
    if any(ord(char) < 0x20 or char == "\\" for char in target):
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return HOME
    return target


def limits(settings: Settings) -> throttle.Limits:
    return throttle.Limits(
        per_account=settings.sign_in_account_limit,
        per_client=settings.sign_in_client_limit,
        window_s=settings.sign_in_window_s,
    )


def session_policy(settings: Settings) -> SessionPolicy:
    return SessionPolicy(settings.session_idle_timeout_s, settings.session_lifetime_s)


def _notice(done: str | None) -> str | None:
    return _NOTICES.get(done or "")


@router.get("/sign-in")
def sign_in_page(request: Request, next: str | None = None, done: str | None = None) -> Response:
    if current_viewer(request) is not None:
        return RedirectResponse(local_path(next), status_code=303)
    return render(
        request,
        "sign_in.html",
        {"next": local_path(next), "email": "", "notice": _notice(done)}
        | sign_in_options.sign_in_choices(request),
        headers={"Cache-Control": "no-store"},
    )


@router.post("/sign-in")
def sign_in_submit(
    request: Request,
    ctx: Ctx,
    email: FormText = "",
    password: FormText = "",
    next: FormText = HOME,
) -> Response:
    try:
        sign_in_options.check_password_sign_in(request, ctx, email)
        signed_in = signin.sign_in(
            ctx.db,
            email=email,
            password=password,
            client=client_address(request),
            now_us=now_us(ctx.clock),
            limits=limits(ctx.settings),
            policy=session_policy(ctx.settings),
            previous_token=session_token(request),
        )
    except signin.SignInRefused as exc:
        headers = {"Cache-Control": "no-store"}
        if exc.retry_after_s is not None:
            headers["Retry-After"] = str(exc.retry_after_s)
        return render(
            request,
            "sign_in.html",
            {"next": local_path(next), "email": email[:320], "error": exc.message}
            | sign_in_options.sign_in_choices(request, password_form=True),
            status_code=exc.status,
            headers=headers,
        )
    response = RedirectResponse(local_path(next), status_code=303)
    cookies.set_session(response, signed_in.token, secure=request.state.secure_cookies)
    return response


@router.post("/sign-out")
def sign_out(request: Request, ctx: Ctx) -> Response:
    viewer, token = current_viewer(request), session_token(request)
    if viewer is not None and token is not None:
        signin.sign_out(
            ctx.db,
            token=token,
            email=viewer.email,
            client=client_address(request),
            now_us=now_us(ctx.clock),
        )
    location = sign_in_options.SIGNED_OUT
    if viewer is not None:
        location = sign_in_options.signed_out_location(ctx, viewer.account_id)
    response = RedirectResponse(location, status_code=303)
    cookies.clear_session(response, secure=request.state.secure_cookies)
    return response


def _account_page(
    request: Request, ctx: Ctx, viewer: PageViewer, *, status: int = 200, **values: object
) -> Response:
    account = accounts.get_account(ctx.db, viewer.account_id)
    return render(
        request,
        "account.html",
        {"account": account, "min_password": passwords.MIN_LENGTH, **values},
        status_code=status,
    )


@router.get("/account")
def account_page(
    request: Request, ctx: Ctx, viewer: PageViewer, done: str | None = None
) -> Response:
    return _account_page(request, ctx, viewer, notice=_notice(done))


@router.post("/account")
def account_update(
    request: Request, ctx: Ctx, viewer: PageViewer, display_name: FormText = ""
) -> Response:
    """Only the display name: any other field (``role``...) is ignored."""
    try:
        accounts.update_profile(
            ctx.db,
            viewer.account_id,
            display_name=display_name,
            actor=viewer.email,
            now_us=now_us(ctx.clock),
            client=client_address(request),
        )
    except accounts.AccountError as exc:
        return _account_page(request, ctx, viewer, status=400, errors={"profile": str(exc)})
    return RedirectResponse("/account?done=profile", status_code=303)


@router.post("/account/password")
def account_password(
    request: Request,
    ctx: Ctx,
    viewer: PageViewer,
    current_password: FormText = "",
    new_password: FormText = "",
    confirm_password: FormText = "",
) -> Response:
    def refuse(message: str, status: int = 400) -> Response:
        return _account_page(request, ctx, viewer, status=status, errors={"password": message})

    try:
        signin.check_password(
            ctx.db,
            email=viewer.email,
            password=current_password,
            client=client_address(request),
            now_us=now_us(ctx.clock),
            limits=limits(ctx.settings),
        )
    except signin.SignInRefused as exc:
        message = "The current password is not correct." if exc.status == 401 else exc.message
        return refuse(message, exc.status)
    if new_password != confirm_password:
        return refuse("The new passwords do not match.")
    try:
        accounts.set_password(
            ctx.db,
            viewer.account_id,
            password=new_password,
            actor=viewer.email,
            now_us=now_us(ctx.clock),
            client=client_address(request),
            keep_session=session_token(request),
        )
    except passwords.PasswordRejected as exc:
        return refuse(f"The new password is not accepted: {exc}.")
    return RedirectResponse("/account?done=password", status_code=303)
