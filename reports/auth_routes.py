"""Login, password change, logout and admin exports as plain HTTP routes, and the middleware that
requires a session for everything else. No Streamlit here: these run in the server's ASGI layer.

Nothing that goes wrong here reaches the browser as a traceback: a user's mistake shows its message,
anything else a generic line (the details go to the server log).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from harness import review
from harness.errors import HarnessError
from harness.records.review import Account
from harness.review import auth as review_auth
from harness.review.analysis import export_csv
from harness.review.sessions import COOKIE, SESSION_TTL, create_session, end_session, server_secret, session_account
from harness.store import Store, reviews
from reports.access import EXPORT_PATH, LOGIN_PATH, LOGOUT_PATH, auth_mode, login_url, safe_next
from reports.login_page import change_page, login_page, message_page

LOG = logging.getLogger("harness.auth")
PUBLIC_PREFIXES = ("/auth/", "/static/", "/_stcore/health", "/_stcore/host-config", "/favicon")
CHANGE_TTL_S = 600
GENERIC = "Something went wrong on the server; try again. (The server log has the details.)"


def store() -> Store:
    return Store(os.environ.get("HARNESS_DB") or None)


def _cookie_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for key, value in headers:
        if key.lower() == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 (a malformed cookie header is no session)
                return None
            if COOKIE in jar:
                return jar[COOKIE].value
    return None


def request_account(headers: list[tuple[bytes, bytes]]) -> Account | None:
    token = _cookie_token(headers)
    return session_account(store(), token) if token else None


class LoginRequired:
    """ASGI middleware: in `accounts` mode, no page, websocket or media without a live session."""

    def __init__(self, app: Callable[..., Awaitable[None]]):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"].startswith(PUBLIC_PREFIXES):
            return await self.app(scope, receive, send)
        try:
            allowed = await run_in_threadpool(self._allowed, scope)
        except Exception:  # noqa: BLE001 (never let a store problem open the door or show a traceback)
            LOG.exception("session check failed")
            allowed = False
        if allowed:
            return await self.app(scope, receive, send)
        await _refuse(scope, receive, send)

    @staticmethod
    def _allowed(scope) -> bool:
        if auth_mode(store()) == "open":
            return True
        return request_account(scope.get("headers", [])) is not None


async def _refuse(scope, receive, send) -> None:
    if scope["type"] == "websocket":
        message = await receive()
        if message.get("type") == "websocket.connect":
            await send({"type": "websocket.close", "code": 1008})
        return
    path = scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    wants_page = scope.get("method") == "GET" and not path.startswith(("/_stcore/", "/media/", "/component/"))
    if wants_page:
        response: Response = RedirectResponse(login_url(path + (f"?{query}" if query else "")), status_code=303)
    else:
        response = PlainTextResponse("log in first", status_code=401)
    await response(scope, receive, send)


def _guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        try:
            response = await handler(request)
        except HarnessError as exc:
            response = message_page("Not possible", str(exc), 400)
        except Exception:  # noqa: BLE001 (no traceback reaches a browser)
            LOG.exception("auth route %s failed", request.url.path)
            response = message_page("Error", GENERIC, 500)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    return run


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body())[:20_000].decode("utf-8", errors="replace")
    return {key: values[0] for key, values in parse_qs(body, keep_blank_values=True).items()}


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    return origin is None or origin.split("://", 1)[-1] == request.headers.get("host")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def _logged_in(request: Request, account: Account, target: str) -> Response:
    token = create_session(store(), account)
    response = RedirectResponse(safe_next(target), status_code=303)
    response.set_cookie(COOKIE, token, max_age=int(SESSION_TTL.total_seconds()), path="/", httponly=True,
                        samesite="strict", secure=_secure(request))
    return response


async def login_get(request: Request) -> Response:
    if auth_mode(store()) == "open":
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return login_page(request.query_params.get("next"), None)


async def login_post(request: Request) -> Response:
    form = await _form(request)
    target = form.get("next")
    if not _same_origin(request):
        return login_page(target, "this form must be sent from this server's own page", 403)
    result = await run_in_threadpool(review_auth.login, store(), form.get("name", ""), form.get("password", ""))
    if result.account is None:
        return login_page(target, result.message, 401)
    if result.must_change_password:
        return change_page(target, result.account.name, _change_token(result.account.name), None)
    return _logged_in(request, result.account, target)


def _change_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(server_secret(store()), salt="harness-password-change")


def _hash_tag(name: str) -> str | None:
    """A short digest of the account's current password hash: a change token is good for one change."""
    found = reviews.credentials(store(), name)
    return hashlib.sha256(found[2]).hexdigest()[:16] if found else None


def _change_token(name: str) -> str:
    return _change_serializer().dumps([name, _hash_tag(name)])


def _change_account(token: str) -> str | None:
    try:
        name, tag = _change_serializer().loads(token, max_age=CHANGE_TTL_S)
    except (BadData, ValueError, TypeError):
        return None
    return name if tag is not None and tag == _hash_tag(name) else None


async def password_post(request: Request) -> Response:
    form = await _form(request)
    target = form.get("next")
    if not _same_origin(request):
        return login_page(target, "this form must be sent from this server's own page", 403)
    name = await run_in_threadpool(_change_account, form.get("token", ""))
    if name is None:
        return login_page(target, "that password change has expired or was used; log in again", 401)
    new, confirm = form.get("new_password", ""), form.get("confirm_password", "")
    problem = review_auth.check_new_password(new, confirm, "")
    if problem:
        return change_page(target, name, form.get("token", ""), problem)
    account = await run_in_threadpool(review_auth.set_own_password, store(), name, new)
    return _logged_in(request, account, target)


async def logout(request: Request) -> Response:
    await run_in_threadpool(end_session, store(), request.cookies.get(COOKIE))
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


async def export_grades(request: Request) -> Response:
    account = await run_in_threadpool(request_account, list(request.scope.get("headers", [])))
    if account is None or account.role != "admin":
        return PlainTextResponse("only an admin's session may export grades", status_code=403)
    queue = await run_in_threadpool(review.get_queue, store(), request.query_params.get("queue", ""), account)
    body = await run_in_threadpool(export_csv, store(), queue)
    name = "".join(c for c in queue.queue_id if c.isalnum() or c in "-_.")
    return Response(body, media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="grades_{name}.csv"'})


def auth_routes() -> list[Route]:
    return [
        Route(LOGIN_PATH, _guarded(login_get), methods=["GET"]),
        Route(LOGIN_PATH, _guarded(login_post), methods=["POST"]),
        Route("/auth/password", _guarded(password_post), methods=["POST"]),
        Route(LOGOUT_PATH, _guarded(logout), methods=["GET", "POST"]),
        Route(EXPORT_PATH, _guarded(export_grades), methods=["GET"]),
    ]


__all__ = ["LoginRequired", "auth_routes"]
