"""`hotline run` creates its web users on first start; the admin signs in over HTTP with the
generated password, which appears nowhere in the process output."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

import aiohttp
import pytest

from hotline.settings import Settings
from tests.harness import sipp
from tests.integration.service import Service, start_service


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[tuple[Service, str]]:
    port = sipp.free_port(kind=1)
    running = await start_service(settings, HOTLINE_WEB__PORT=str(port))
    try:
        yield running, f"http://127.0.0.1:{port}"
    finally:
        await running.kill()


async def test_admin_signs_in_with_the_generated_password(
    settings: Settings, hotline_settings: Settings, service: tuple[Service, str]
) -> None:
    process, url = service
    created = await process.wait_for("web_users_created")
    assert created["users"][0] == "admin"
    assert created["users"][1:] == [a.id for a in hotline_settings.agents]  # every configured agent
    await process.wait_for("hotline_ready")
    secret = settings.state_path / "secrets" / "web-admin-password"
    assert secret.stat().st_mode & 0o777 == 0o600
    password = secret.read_text().strip()

    # unsafe=True: aiohttp's client keeps no cookies for an IP address unless told to (browsers do).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{url}/api/me") as response:
            assert response.status == 401
        credentials = {"username": "admin", "password": password}
        async with http.post(
            f"{url}/api/login", json={**credentials, "password": "wrong-password"}
        ) as response:
            assert response.status == 401
        async with http.post(f"{url}/api/login", json=credentials) as response:
            assert response.status == 200, await response.text()
            assert "HttpOnly" in response.headers["Set-Cookie"]
            csrf = (await response.json())["csrf_token"]
        async with http.get(f"{url}/api/me") as response:
            me = await response.json()
        assert me["username"] == "admin" and me["role"] == "admin" and me["csrf_token"] == csrf
        async with http.get(f"{url}/healthz") as response:
            assert response.status == 200 and (await response.json())["ari_connected"] is True
        async with http.post(f"{url}/api/logout", headers={"X-CSRF-Token": csrf}) as response:
            assert response.status == 200

    process.process.send_signal(signal.SIGTERM)
    await process.wait_for("hotline_stopped")
    assert await asyncio.wait_for(process.process.wait(), 15) == 0
    assert process.process.stdout is not None
    log = "".join(process.lines) + (await process.process.stdout.read()).decode()
    assert '"web_login"' in log and '"web_login_failed"' in log
    assert password not in log and "wrong-password" not in log
