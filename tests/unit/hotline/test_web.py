"""The web shell over HTTP: sign-in, cookies, bearer tokens, CSRF, roles, expiry, restarts."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from structlog.testing import capture_logs
from yarl import URL

from hotline import auth
from hotline.auth import Role, Users
from hotline.db import Store
from hotline.settings import Settings
from hotline.web import (
    AUTH,
    CSRF_HEADER,
    THROTTLE,
    ApiError,
    RouteInstaller,
    _set_cookie,
    build_web,
    current_user,
    public,
    requires,
)
from tests.conftest import make_settings
from tests.unit.hotline.conftest import WEB_SETTINGS, Clock

PASSWORD = "doğru-parola"


def demo_routes(webapp: web.Application) -> None:
    """What a domain package adds: routes for each role, an unsafe API call and a page."""

    async def whoami(request: web.Request) -> web.Response:
        return web.json_response({"username": current_user(request).username})

    @requires(Role.supervisor)
    async def wallboard(request: web.Request) -> web.Response:
        return await whoami(request)

    @requires("admin")
    async def settings_page(request: web.Request) -> web.Response:
        return await whoami(request)

    async def add_note(request: web.Request) -> web.Response:
        body = await request.json()
        if not body.get("text"):
            raise ApiError(422, "empty_note", "a note needs text")
        return web.json_response({"saved": body["text"], "by": current_user(request).username})

    @public
    async def open_info(_request: web.Request) -> web.Response:
        return web.json_response({"open": True})

    webapp.router.add_get("/api/agent", whoami)
    webapp.router.add_get("/api/wallboard", wallboard)
    webapp.router.add_get("/api/admin", settings_page)
    webapp.router.add_post("/api/notes", add_note)
    webapp.router.add_get("/api/open", open_info)
    webapp.router.add_get("/desk", whoami)


@asynccontextmanager
async def serve(
    settings: Settings, store: Store, clock: Clock, extra: Iterable[RouteInstaller] = (demo_routes,)
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    client = TestClient(TestServer(build_web(settings, store, extra, clock)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def client(
    web_settings: Settings, web_store: Store, clock: Clock
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    users = Users(web_store, clock)
    await users.add("ayse", Role.agent, PASSWORD, "Ayşe Yılmaz", "1001")
    await users.add("sema", Role.supervisor, PASSWORD, "Sema Kaya")
    await users.add("admin", Role.admin, PASSWORD)
    async with serve(web_settings, web_store, clock) as client:
        yield client


Client = TestClient[web.Request, web.Application]


async def login(client: Client, username: str = "ayse", password: str = PASSWORD, **extra: Any) -> Any:
    async with client.post("/api/login", json={"username": username, "password": password, **extra}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_login_sets_a_strict_http_only_cookie_and_returns_the_csrf_token(client: Client) -> None:
    async with client.post("/api/login", json={"username": "ayse", "password": PASSWORD}) as response:
        assert response.status == 200
        body = await response.json()
        cookie = response.headers["Set-Cookie"]
    assert body["username"] == "ayse" and body["role"] == "agent" and body["agent_id"] == "1001"
    assert body["display_name"] == "Ayşe Yılmaz" and body["csrf_token"]
    assert re.match(r"hotline_session=[\w-]{40,};", cookie)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    assert "Max-Age" not in cookie and "expires" not in cookie.lower()  # forgotten when the browser closes
    async with client.get("/api/me") as me:
        assert me.status == 200
        assert await me.json() == body


def test_the_cookie_is_secure_on_https() -> None:
    request = make_mocked_request("POST", "/api/login").clone(scheme="https")
    response = web.Response()
    _set_cookie(request, response, "token")
    assert response.cookies["hotline_session"]["secure"] is True


@pytest.mark.parametrize("trusted", [True, False])
async def test_behind_a_trusted_proxy_the_cookie_is_secure_and_the_client_address_counts(
    web_settings: Settings, web_store: Store, clock: Clock, trusted: bool
) -> None:
    await Users(web_store, clock).add("ayse", Role.agent, PASSWORD, "Ayşe Yılmaz", "1001")
    proxies = ["127.0.0.1"] if trusted else []
    settings = web_settings.model_copy(
        update={"web": web_settings.web.model_copy(update={"trusted_proxies": proxies, "login_attempts": 1})}
    )
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    async with serve(settings, web_store, clock) as client:
        body = {"username": "ayse", "password": PASSWORD}
        async with client.post("/api/login", json=body, headers=forwarded) as response:
            assert response.status == 200
            assert ("Secure" in response.headers["Set-Cookie"]) is trusted
        wrong = {"username": "ayse", "password": "yanlış"}
        async with client.post("/api/login", json=wrong, headers=forwarded) as response:
            assert response.status == 401
        # Another client behind the same proxy is not held back by the first one's mistakes,
        # unless the proxy is not trusted (then every client is the proxy's address).
        other = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.9"}
        async with client.post("/api/login", json=wrong, headers=other) as response:
            assert response.status == (401 if trusted else 429)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"username": "ayse", "password": "\xff\xfe"}', "application/json"),  # not UTF-8
        (b'{"username": "ayse", "password": "x"}', "application/json; charset=no-such-charset"),
        (b"[" * 100_000, "application/json"),  # nested beyond what the parser takes
    ],
)
async def test_a_body_that_cannot_be_read_as_json_is_a_bad_request(
    client: Client, body: bytes, content_type: str
) -> None:
    async with client.post("/api/login", data=body, headers={"Content-Type": content_type}) as response:
        assert response.status == 400 and (await response.json())["error"] == "bad_json"


async def test_a_wrong_login_says_nothing_about_whether_the_user_exists(
    client: Client, web_store: Store
) -> None:
    await Users(web_store).set_disabled("sema")
    answers = []
    for username, password in (("ayse", "yanlış-parola"), ("nobody", PASSWORD), ("sema", PASSWORD)):
        async with client.post("/api/login", json={"username": username, "password": password}) as response:
            assert response.status == 401 and "Set-Cookie" not in response.headers
            answers.append(await response.json())
    assert (
        answers[0]
        == answers[1]
        == answers[2]
        == {
            "error": "invalid_login",
            "message": "Wrong username or password.",
        }
    )


async def test_repeated_failures_are_refused_for_a_while(client: Client, clock: Clock) -> None:
    for _ in range(3):  # login_attempts = 3
        async with client.post("/api/login", json={"username": "ayse", "password": "yanlış"}) as response:
            assert response.status == 401
    async with client.post("/api/login", json={"username": "ayse", "password": PASSWORD}) as response:
        assert response.status == 429  # even the right password waits
        assert int(response.headers["Retry-After"]) == 60
        assert (await response.json())["error"] == "too_many_attempts"
    await login(client, "sema")  # another user from the same address is not held up
    clock.advance(61)
    await login(client, "ayse")


async def test_bad_login_requests(client: Client) -> None:
    async with client.post("/api/login", data="username=ayse&password=x") as response:
        assert response.status == 415 and (await response.json())["error"] == "json_required"
    async with client.post("/api/login", json={"username": "ayse"}) as response:
        assert response.status == 400
    origin = {"Origin": "https://evil.example"}
    async with client.post(
        "/api/login", json={"username": "ayse", "password": PASSWORD}, headers=origin
    ) as r:
        assert r.status == 403 and "Set-Cookie" not in r.headers


async def test_bearer_tokens_need_no_cookie_and_no_csrf_header(client: Client) -> None:
    async with client.post(
        "/api/login", json={"username": "sema", "password": PASSWORD, "bearer": True}
    ) as r:
        assert r.status == 200 and "Set-Cookie" not in r.headers
        token = (await r.json())["token"]
    client.session.cookie_jar.clear()
    bearer = {"Authorization": f"Bearer {token}"}
    async with client.get("/api/wallboard", headers=bearer) as response:
        assert response.status == 200 and await response.json() == {"username": "sema"}
    async with client.post("/api/notes", json={"text": "acil"}, headers=bearer) as response:
        assert response.status == 200
    async with client.get("/api/me", headers={"Authorization": "Bearer not-a-token"}) as response:
        assert response.status == 401


async def test_cookie_sessions_need_the_csrf_header_for_changes(client: Client) -> None:
    csrf = (await login(client))["csrf_token"]
    async with client.post("/api/notes", json={"text": "not"}) as response:
        assert response.status == 403
        assert (await response.json())["error"] == "csrf"
    async with client.post(
        "/api/notes", json={"text": "not"}, headers={CSRF_HEADER: csrf[:-2] + "xx"}
    ) as response:
        assert response.status == 403
    async with client.post("/api/notes", json={"text": "not"}, headers={CSRF_HEADER: csrf}) as response:
        assert response.status == 200 and await response.json() == {"saved": "not", "by": "ayse"}
    async with client.post("/api/notes", json={"text": ""}, headers={CSRF_HEADER: csrf}) as response:
        assert response.status == 422
        assert await response.json() == {"error": "empty_note", "message": "a note needs text"}


@pytest.mark.parametrize(
    ("username", "allowed"),
    [
        ("ayse", {"/api/agent"}),
        ("sema", {"/api/agent", "/api/wallboard"}),
        ("admin", {"/api/agent", "/api/wallboard", "/api/admin"}),
    ],
)
async def test_each_role_includes_the_ones_below(client: Client, username: str, allowed: set[str]) -> None:
    await login(client, username)
    for path in ("/api/agent", "/api/wallboard", "/api/admin"):
        async with client.get(path) as response:
            if path in allowed:
                assert response.status == 200, path
            else:
                assert response.status == 403, path
                body = await response.json()
                assert body["error"] == "forbidden" and "role" in body["message"]


async def test_without_a_session_apis_answer_401_and_pages_redirect(client: Client) -> None:
    async with client.get("/api/me") as response:
        assert response.status == 401
        assert await response.json() == {"error": "unauthorized", "message": "sign in first"}
    async with client.get("/desk?tab=queue", allow_redirects=False) as response:
        assert response.status == 303
        location = URL(response.headers["Location"])
        assert location.path == "/login" and location.query["next"] == "/desk?tab=queue"
    async with client.get("/api/open") as response:
        assert response.status == 200
    async with client.get("/api/nothing-here") as response:
        assert response.status == 404 and (await response.json())["error"] == "not_found"
    async with client.delete("/api/me") as response:
        assert response.status == 405 and "Allow" in response.headers


async def test_sessions_end_when_idle_or_too_old(client: Client, clock: Clock) -> None:
    await login(client)
    clock.advance(599)  # session_idle = 600
    async with client.get("/api/me") as response:
        assert response.status == 200  # and counts as activity
    for _ in range(4):
        clock.advance(590)
        async with client.get("/api/me") as response:
            assert response.status == 200
    clock.advance(590)  # 3549 s since sign-in: still under the 3600 s lifetime
    async with client.get("/api/me") as response:
        assert response.status == 200
    clock.advance(60)  # past the lifetime, however active
    async with client.get("/api/me") as response:
        assert response.status == 401

    await login(client)
    clock.advance(601)
    async with client.get("/api/me") as response:
        assert response.status == 401


async def test_a_restart_keeps_people_signed_in(
    client: Client, web_settings: Settings, web_store: Store, clock: Clock
) -> None:
    body = await login(client)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["hotline_session"].value
    await client.close()

    async with serve(web_settings, web_store, clock) as restarted:
        headers = {"Cookie": f"hotline_session={cookie}"}
        async with restarted.get("/api/me", headers=headers) as response:
            assert response.status == 200 and (await response.json())["username"] == "ayse"
        headers[CSRF_HEADER] = body["csrf_token"]  # the CSRF token outlives the restart too
        async with restarted.post("/api/notes", json={"text": "x"}, headers=headers) as response:
            assert response.status == 200


async def test_logout_ends_the_session(client: Client) -> None:
    csrf = (await login(client))["csrf_token"]
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["hotline_session"].value
    async with client.post("/api/logout") as response:
        assert response.status == 403  # CSRF applies here too
    async with client.post("/api/logout", headers={CSRF_HEADER: csrf}) as response:
        assert response.status == 200
        assert 'hotline_session=""' in response.headers["Set-Cookie"]
    async with client.get("/api/me", headers={"Cookie": f"hotline_session={cookie}"}) as response:
        assert response.status == 401


async def test_every_answer_carries_the_security_headers(client: Client) -> None:
    for path in ("/login", "/api/me", "/static/hotline.css", "/desk"):
        async with client.get(path, allow_redirects=False) as response:
            headers = response.headers
            assert headers["Content-Security-Policy"].startswith("default-src 'self'"), path
            assert headers["X-Frame-Options"] == "DENY"
            assert headers["Referrer-Policy"] == "no-referrer"
            assert headers["X-Content-Type-Options"] == "nosniff"
    async with client.get("/api/me") as response:
        assert response.headers["Cache-Control"] == "no-store"
    async with client.get("/static/../auth.py") as response:
        assert response.status == 404


async def test_the_login_form_works_without_javascript(client: Client) -> None:
    async with client.get("/login?next=/desk") as response:
        page = await response.text()
        assert response.status == 200 and "Giriş" in page and "Sign in" in page
        assert 'value="/desk"' in page and "<script" not in page
    form = {"username": "ayse", "password": "yanlış", "next": "/desk"}
    async with client.post("/login", data=form) as response:
        page = await response.text()
        assert response.status == 401
        assert "Kullanıcı adı veya parola hatalı." in page and "Wrong username or password." in page
        assert 'value="ayse"' in page and "yanlış" not in page

    form["password"] = PASSWORD
    async with client.post("/login", data=form, allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/desk"
        assert "HttpOnly" in response.headers["Set-Cookie"]
    async with client.get("/") as response:
        page = await response.text()
        assert "Ayşe Yılmaz" in page and "Çağrı temsilcisi" in page


async def test_the_login_form_refuses_other_sites_and_foreign_redirects(client: Client) -> None:
    form = {"username": "ayse", "password": PASSWORD, "next": "//evil.example/x"}
    for foreign in ({"Origin": "https://evil.example"}, {"Origin": "null", "Sec-Fetch-Site": "cross-site"}):
        async with client.post("/login", data=form, headers=foreign) as response:
            assert response.status == 403 and "Set-Cookie" not in response.headers
    # Our own form under Referrer-Policy no-referrer: the browser sends Origin null, same-origin.
    ours = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    async with client.post("/login", data=form, headers=ours, allow_redirects=False) as response:
        assert response.status == 303
    async with client.post("/login", data=form, allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"] == "/"


async def test_no_password_or_token_reaches_the_log(client: Client) -> None:
    with capture_logs() as logs:
        async with client.post("/api/login", json={"username": PASSWORD, "password": "x"}) as response:
            assert response.status == 401  # a password typed into the username field
        async with client.post("/api/login", json={"username": "ayse", "password": "yanlış-parola"}):
            pass
        body = await login(client, bearer=True)
    text = repr(logs)
    assert PASSWORD not in text and "yanlış-parola" not in text and body["token"] not in text
    assert [e["event"] for e in logs] == ["web_login_failed", "web_login_failed", "web_login"]
    assert logs[1]["username"] == "ayse" and logs[0]["username"] is None


async def _post_login(client: Client, username: str, password: str) -> tuple[int, dict[str, str]]:
    async with client.post("/api/login", json={"username": username, "password": password}) as response:
        return response.status, dict(response.headers)


async def test_parallel_wrong_passwords_cannot_outrun_the_throttle(
    tmp_path: Path, web_store: Store, clock: Clock
) -> None:
    settings = make_settings(tmp_path, WEB_SETTINGS.replace("login_attempts = 3", "login_attempts = 5"))
    await Users(web_store, clock).add("ayse", Role.agent, PASSWORD)
    async with serve(settings, web_store, clock) as client:
        answers = await asyncio.gather(*(_post_login(client, "ayse", f"yanlış-{i}") for i in range(20)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [401] * 5 + [429] * 15
    assert all(int(headers["Retry-After"]) > 0 for status, headers in answers if status == 429)


async def test_one_address_trying_many_usernames_is_slowed_down(client: Client, clock: Clock) -> None:
    for i in range(12):  # 4 x login_attempts, each name well under its own limit
        assert (await _post_login(client, f"user{i}", "yanlış"))[0] == 401
    status, headers = await _post_login(client, "sema", PASSWORD)
    assert status == 429 and int(headers["Retry-After"]) == 60  # even a real user with the right password
    clock.advance(61)
    await login(client, "sema")


async def test_overlong_credentials_are_refused_before_any_work(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_hashing(password: str, stored: str) -> bool:
        raise AssertionError("hashed a password that should have been refused")

    monkeypatch.setattr(auth, "verify_password", no_hashing)
    throttle = client.server.app[THROTTLE]
    for username, password in (("a" * 65, PASSWORD), ("ayse", "x" * 1025)):
        async with client.post("/api/login", json={"username": username, "password": password}) as r:
            assert r.status == 400 and (await r.json())["error"] == "too_long"
        form = {"username": username, "password": password}
        async with client.post("/login", data=form) as r:
            assert r.status == 400 and username not in await r.text()
    assert throttle.retry_after("a" * 65, "127.0.0.1") == 0
    assert not any(throttle._pairs.times) and not any(throttle._users.times)
    assert not any(throttle._addresses.times)


async def test_a_burst_of_sign_ins_beyond_the_hashing_queue_is_refused_at_once(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    go_on = threading.Event()

    def held_back(password: str, stored: str) -> bool:
        go_on.wait(10)
        return False

    monkeypatch.setattr(auth, "verify_password", held_back)
    client.server.app[AUTH].hashing = auth.HashGate(running=1, waiting=1)
    tasks = [asyncio.create_task(_post_login(client, name, "yanlış")) for name in ("ayse", "sema", "admin")]
    try:
        done, _ = await asyncio.wait(tasks, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        assert len(done) == 1
        status, headers = done.pop().result()
        assert status == 503 and headers["Retry-After"] == "1"
    finally:
        go_on.set()
    assert sorted(status for status, _ in await asyncio.gather(*tasks)) == [401, 401, 503]
    # The refused attempt was not counted against anyone.
    assert sum(len(times) for times in client.server.app[THROTTLE]._pairs.times.values()) == 2
