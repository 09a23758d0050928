"""The sign-in page in a real browser: a wrong password, signing in, seeing who is signed in, signing out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, expect

from hotline import db
from hotline.auth import Role, Users
from hotline.web import build_web
from tests.conftest import make_settings

PASSWORD = "doğru-parola-183"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TestServer]:
    settings = make_settings(tmp_path)
    await db.upgrade_async(settings.database_url)
    store = db.Store(settings.database_url)
    await Users(store).add("ayse", Role.agent, PASSWORD, "Ayşe Yılmaz", "1001")
    server = TestServer(build_web(settings, store))
    await server.start_server()
    yield server
    await server.close()
    await store.close()


async def test_signing_in_and_out_in_a_browser(browser: Browser, server: TestServer) -> None:
    page = await browser.new_page(locale="tr-TR")
    problems: list[str] = []  # a CSP violation, a script error or a missing file shows up here
    wrong_password = "the server responded with a status of 401"  # the one error we cause on purpose
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" and wrong_password not in message.text
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))

    await page.goto(str(server.make_url("/")))
    await expect(page).to_have_url(str(server.make_url("/login?next=/")))
    await expect(page.locator("h1")).to_contain_text("Giriş")
    await expect(page.locator("h1")).to_contain_text("Sign in")

    await page.fill("#username", "ayse")
    await page.fill("#password", "yanlış-parola")
    await page.click("button[type=submit]")
    await expect(page.locator("#error")).to_contain_text("Kullanıcı adı veya parola hatalı.")
    await expect(page.locator("#username")).to_have_value("ayse")
    await expect(page.locator("#password")).to_have_value("")

    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(str(server.make_url("/")))
    await expect(page.locator("#display-name")).to_have_text("Ayşe Yılmaz")
    await expect(page.locator("#who")).to_contain_text("Çağrı temsilcisi")

    [cookie] = await page.context.cookies()
    assert cookie["name"] == "hotline_session" and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert await page.evaluate("document.cookie") == ""  # out of reach of scripts

    await page.click("#logout")  # a POST with the CSRF token fetched from /api/me
    await expect(page).to_have_url(str(server.make_url("/login")))
    response = await page.request.get(str(server.make_url("/api/me")))
    assert response.status == 401
    assert problems == []
