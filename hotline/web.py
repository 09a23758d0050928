"""The web shell every page and API stands on: sign-in, sessions, roles, security headers.

Domain packages add routes through *installers* (``Callable[[web.Application], None]``) given to
``build_web``/``start_web``, and mark each handler with the role it needs::

    @requires(Role.supervisor)
    async def wallboard(request: web.Request) -> web.Response:
        user = current_user(request)  # the signed-in Principal
        ...

Every route needs a signed-in user unless marked ``@public``; ``@requires(role)`` asks for more.
An API path (``/api/…``) answers 401/403 as JSON ``{"error": …, "message": …}``; a page redirects
to ``/login``. Anything else a handler wants to refuse it raises as ``ApiError``.

CSRF: a request authenticated by the session cookie with an unsafe method (anything but GET, HEAD,
OPTIONS) must carry ``X-CSRF-Token``, the value returned by ``POST /api/login`` and ``GET /api/me``
(derived from the session, so it survives restarts). Bearer-token requests need none: browsers never
add that header on their own. The sign-in endpoints have no session yet; they refuse requests the
browser marks as coming from another site (``Sec-Fetch-Site``, or an ``Origin`` not ours) instead,
and ``/api/login`` takes JSON only.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from urllib.parse import quote

import jinja2
import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from hotline.auth import (
    MAX_PASSWORD,
    MAX_USERNAME,
    Auth,
    Clock,
    HashingBusy,
    LoginThrottle,
    Principal,
    Role,
    SessionPolicy,
    csrf_token,
)
from hotline.db import Store
from hotline.models import utcnow
from hotline.settings import Settings

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Callable[..., Any])
RouteInstaller = Callable[[web.Application], None]

USER = web.RequestKey("user", Principal)
AUTH = web.AppKey("auth", Auth)
THROTTLE = web.AppKey("throttle", LoginThrottle)
_TOKEN = web.RequestKey("session_token", str)

COOKIE = "hotline_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ACCESS = "__hotline_access__"
_PUBLIC = "public"

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_pages = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
ROLE_NAMES = {
    Role.agent: ("Çağrı temsilcisi", "Agent"),
    Role.supervisor: ("Süpervizör", "Supervisor"),
    Role.admin: ("Yönetici", "Administrator"),
}
BAD_LOGIN = ("Kullanıcı adı veya parola hatalı.", "Wrong username or password.")
TOO_MANY = (
    "Çok fazla hatalı deneme. Lütfen biraz sonra tekrar deneyin.",
    "Too many failed attempts. Try again later.",
)
TOO_LONG = ("Kullanıcı adı veya parola çok uzun.", "The username or password is too long.")
BUSY = (
    "Sunucu şu an çok meşgul. Lütfen biraz sonra tekrar deneyin.",
    "The server is busy. Try again shortly.",
)


# ---------------------------------------------------------------- the API for route handlers


class ApiError(Exception):
    """Raised by a handler to answer ``{"error": error, "message": message}`` with ``status``."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def json_error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status, headers=headers)


def requires(role: Role | str) -> Callable[[H], H]:
    """Mark a handler (function or ``web.View`` class) as needing at least ``role``."""
    needed = Role(role)

    def mark(handler: H) -> H:
        setattr(handler, _ACCESS, needed)
        return handler

    return mark


def public(handler: H) -> H:
    """Mark a handler as open to anyone, signed in or not."""
    setattr(handler, _ACCESS, _PUBLIC)
    return handler


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body ({} when there is none), or a 400 ``bad_json``."""
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except (ValueError, LookupError, RecursionError):
        # Not JSON, not in the charset it names (UTF-8 by default), a charset Python does not
        # know (LookupError), or nested too deep to parse.
        raise ApiError(400, "bad_json", "the body is not JSON in UTF-8 (or the charset it names)") from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    return data


def current_user(request: web.Request) -> Principal:
    """The signed-in user; always there in a handler that is not ``@public``."""
    if USER not in request:
        raise ApiError(401, "unauthorized", "sign in first")
    return request[USER]


# ---------------------------------------------------------------- middlewares


def _is_api(request: web.Request) -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def _slug(reason: str) -> str:
    return reason.lower().replace(" ", "_")


def _behind_proxies(trusted: frozenset[str]) -> Middleware:
    """Behind a trusted reverse proxy (``web.trusted_proxies``) the request is seen as the client
    made it: the scheme from X-Forwarded-Proto (so cookies keep ``Secure`` over HTTPS) and the
    address from X-Forwarded-For (so sign-in attempts are counted per client, not per proxy).
    From anyone else these headers are ignored: a client could claim any address."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.remote not in trusted:
            return await handler(request)
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        chain = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
        # The nearest address that is not one of our proxies is the client's.
        client = next((a for a in reversed(chain) if a not in trusted), request.remote)
        scheme = proto if proto in ("http", "https") else request.scheme
        return await handler(request.clone(scheme=scheme, remote=client))

    return middleware


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """API paths answer every error as JSON; nothing about the request but its path is logged."""
    try:
        return await handler(request)
    except ApiError as exc:
        return json_error(exc.status, exc.error, exc.message)
    except web.HTTPException as exc:
        if not _is_api(request) or exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After", "WWW-Authenticate")}
        return json_error(exc.status, _slug(exc.reason), exc.reason, headers)
    except Exception:
        log.exception("web_handler_failed", method=request.method, path=request.path)
        if _is_api(request):
            return json_error(500, "internal", "something went wrong on our side")
        return web.Response(status=500, text="500: Bir sorun oluştu / Something went wrong")


def _token(request: web.Request) -> tuple[str | None, bool]:
    """(token, came from the cookie). A bearer header wins over a cookie."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    return request.cookies.get(COOKIE) or None, True


def _local_path(target: str | None) -> str:
    """Only a path on this site may be a redirect target (no open redirects)."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith(("//", "/\\"))
        or not target.isprintable()
    ):
        return "/"
    return target


def _refuse(request: web.Request, status: int, error: str, message: str) -> web.StreamResponse:
    if _is_api(request):
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return json_error(status, error, message, headers)
    if status == 401 and request.method in ("GET", "HEAD"):
        raise web.HTTPSeeOther(f"/login?next={quote(request.path_qs, safe='/')}")
    return web.Response(status=status, text=f"{status}: {message}")


@web.middleware
async def _authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.http_exception is not None:  # 404/405: nothing to protect
        return await handler(request)
    access = getattr(request.match_info.handler, _ACCESS, Role.agent)  # signed in, unless marked
    if access == _PUBLIC:
        return await handler(request)
    token, via_cookie = _token(request)
    user = await request.config_dict[AUTH].principal(token) if token else None
    if token is None or user is None:
        return _refuse(request, 401, "unauthorized", "sign in first")
    if via_cookie and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), csrf_token(token).encode()):
            return _refuse(request, 403, "csrf", f"missing or wrong {CSRF_HEADER} header")
    if not user.has(access):
        return _refuse(request, 403, "forbidden", f"needs the {access} role")
    request[USER] = user
    request[_TOKEN] = token
    return await handler(request)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    # Pages and API answers are per user; only the shared static files may be cached.
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")


# ---------------------------------------------------------------- sign-in


def _from_another_site(request: web.Request) -> bool:
    """What the browser says about where a request comes from: ``Sec-Fetch-Site`` (every current
    browser), and ``Origin`` when it names one. Under our no-referrer policy a same-origin form
    post carries ``Origin: null``, so a null origin alone proves nothing."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return True
    return request.headers.get("Origin") not in (None, "null", f"{request.scheme}://{request.host}")


class _Refused(NamedTuple):
    status: int
    error: str
    message: tuple[str, str]  # Turkish, English
    retry_after: int | None = None

    def headers(self) -> dict[str, str] | None:
        return None if self.retry_after is None else {"Retry-After": str(self.retry_after)}


async def _sign_in(request: web.Request, username: str, password: str) -> tuple[str, Principal] | _Refused:
    """(token, user) on success, else why not.

    Overlong credentials are refused before anything is kept or hashed. The attempt is counted
    by the throttle before its password is checked (see ``LoginThrottle``) and taken back when
    it never got checked: a busy hashing queue or an error on our side is not a guess.
    """
    if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
        return _Refused(400, "too_long", TOO_LONG)
    throttle, auth = request.config_dict[THROTTLE], request.config_dict[AUTH]
    address = request.remote or "?"
    ticket = throttle.reserve(username, address)
    if isinstance(ticket, float):
        log.warning("web_login_throttled", address=address)
        return _Refused(429, "too_many_attempts", TOO_MANY, int(ticket + 0.999))
    try:
        result = await auth.authenticate(username, password)
    except HashingBusy:
        throttle.release(ticket)
        log.warning("web_login_busy", address=address)
        return _Refused(503, "busy", BUSY, 1)
    except BaseException:
        throttle.release(ticket)
        raise
    if result.user is None:
        # The attempted name is logged only when it is a real user: a password typed into the
        # username field must not reach the log.
        log.info("web_login_failed", reason=result.reason, username=result.known_name, address=address)
        return _Refused(401, "invalid_login", BAD_LOGIN)
    throttle.succeeded(ticket)
    opened = await auth.open_session(result.user)
    log.info(
        "web_login", username=opened.principal.username, role=opened.principal.role.value, address=address
    )
    return opened.token, opened.principal


def _set_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    # A browser-session cookie: closing the browser on a shared desk forgets it.
    response.set_cookie(
        COOKIE, token, path="/", httponly=True, samesite="Strict", secure=True if request.secure else None
    )


async def still_signed_in(request: web.Request) -> bool:
    """Whether the session this request came with is still open for the same user, role and
    agent (for long-lived responses such as live streams). Checking is not activity."""
    now = await request.config_dict[AUTH].principal(request[_TOKEN], touch=False)
    return now == current_user(request)


def _me(user: Principal, token: str) -> dict[str, Any]:
    return {**user.as_json(), "csrf_token": csrf_token(token)}


@public
async def api_login(request: web.Request) -> web.Response:
    """JSON ``{username, password}``: sets the session cookie and returns the user and CSRF token.
    With ``"bearer": true`` it sets no cookie and returns the session token for API clients."""
    if _from_another_site(request):
        raise ApiError(403, "origin", "sign-in from another site")
    if request.content_type != "application/json":
        raise ApiError(415, "json_required", "send the credentials as application/json")
    try:
        body = await request.json()
    except (ValueError, LookupError, RecursionError):  # bad JSON or UTF-8, an unknown charset
        raise ApiError(400, "bad_json", "the body is not valid JSON") from None
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("username"), str)
        or not isinstance(body.get("password"), str)
    ):
        raise ApiError(400, "bad_request", "username and password (strings) are required")
    outcome = await _sign_in(request, body["username"], body["password"])
    if isinstance(outcome, _Refused):
        return json_error(outcome.status, outcome.error, outcome.message[1], outcome.headers())
    token, user = outcome
    if body.get("bearer") is True:
        return web.json_response({**user.as_json(), "token": token})
    response = web.json_response(_me(user, token))
    _set_cookie(request, response, token)
    return response


def _login_page(next_path: str, username: str = "", error: tuple[str, str] | None = None) -> str:
    return _pages.get_template("login.html").render(next=next_path, username=username, error=error)


@public
async def login_page(request: web.Request) -> web.Response:
    page = _login_page(_local_path(request.query.get("next")))
    return web.Response(text=page, content_type="text/html")


@public
async def login_form(request: web.Request) -> web.StreamResponse:
    """The form on /login posts here; works without JavaScript."""
    if _from_another_site(request):
        return web.Response(status=403, text="403: sign-in from another site")
    form = await request.post()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    next_path = _local_path(str(form.get("next", "/")))
    outcome = await _sign_in(request, username, password)
    if isinstance(outcome, _Refused):
        page = _login_page(next_path, username if outcome.status == 401 else "", outcome.message)
        return web.Response(
            status=outcome.status, text=page, content_type="text/html", headers=outcome.headers()
        )
    response = web.Response(status=303, headers={"Location": next_path})
    _set_cookie(request, response, outcome[0])
    return response


async def api_logout(request: web.Request) -> web.Response:
    await request.config_dict[AUTH].close_session(request[_TOKEN])
    log.info("web_logout", username=current_user(request).username)
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


async def api_me(request: web.Request) -> web.Response:
    return web.json_response(_me(current_user(request), request[_TOKEN]))


async def home(request: web.Request) -> web.Response:
    user = current_user(request)
    page = _pages.get_template("home.html").render(user=user, role=ROLE_NAMES[user.role])
    return web.Response(text=page, content_type="text/html")


@public
async def static_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in _STATIC_TYPES or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Type": _STATIC_TYPES[path.suffix]})


def _core_routes(webapp: web.Application) -> None:
    webapp.router.add_get("/login", login_page)
    webapp.router.add_post("/login", login_form)
    webapp.router.add_post("/api/login", api_login)
    webapp.router.add_post("/api/logout", api_logout)
    webapp.router.add_get("/api/me", api_me)
    webapp.router.add_get("/", home)
    webapp.router.add_get("/static/{name}", static_file)


# ---------------------------------------------------------------- building and serving


def build_web(
    settings: Settings, store: Store, extra: Iterable[RouteInstaller] = (), clock: Clock = utcnow
) -> web.Application:
    """The aiohttp application: sign-in and ``/api/me``, then every installer's routes."""
    proxies = _behind_proxies(frozenset(str(a) for a in settings.web.trusted_proxies))
    webapp = web.Application(middlewares=[proxies, _errors, _authorize], client_max_size=1024**2)
    webapp[AUTH] = Auth(store, SessionPolicy.from_settings(settings.web), clock)
    webapp[THROTTLE] = LoginThrottle(
        settings.web.login_attempts, timedelta(seconds=settings.web.login_window), clock
    )
    webapp.on_response_prepare.append(_security_headers)
    _core_routes(webapp)
    for install in extra:
        install(webapp)
    return webapp


async def start_web(settings: Settings, store: Store, extra: Iterable[RouteInstaller] = ()) -> web.AppRunner:
    runner = web.AppRunner(build_web(settings, store, extra), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.web.host, settings.web.port).start()
    log.info("web_listening", url=web_url(settings))
    return runner


def web_url(settings: Settings) -> str:
    host = settings.web.host
    shown = f"[{host}]" if ":" in host else ("127.0.0.1" if host in ("0.0.0.0", "") else host)
    return f"http://{shown}:{settings.web.port}/"
