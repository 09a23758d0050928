"""Users, passwords, the bootstrap and the `hotline users` command, without HTTP."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from hotline import auth, cli
from hotline.auth import Auth, LoginThrottle, Role, UserError, Users, bootstrap_users
from hotline.db import Store
from hotline.settings import Settings
from tests.unit.hotline.conftest import Clock


def test_password_hash_is_salted_scrypt_with_its_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "SCRYPT_N", 2**15)  # the real cost, once
    first, second = auth.hash_password("kırmızı-elma"), auth.hash_password("kırmızı-elma")
    assert first.startswith("scrypt$n=32768,r=8,p=1$") and first != second
    assert auth.verify_password("kırmızı-elma", first) and auth.verify_password("kırmızı-elma", second)
    assert not auth.verify_password("kirmizi-elma", first)
    assert not auth.verify_password("x", "md5$abc") and not auth.verify_password("x", "garbage")
    assert not auth.needs_rehash(first)


def test_weaker_hashes_are_flagged_for_rehash(monkeypatch: pytest.MonkeyPatch) -> None:
    weak = auth.hash_password("password-1")
    monkeypatch.setattr(auth, "SCRYPT_N", 2**11)
    assert auth.needs_rehash(weak) and not auth.needs_rehash(auth.hash_password("password-1"))


def test_roles_include_the_ones_below() -> None:
    assert Role.admin.covers(Role.supervisor) and Role.admin.covers(Role.agent)
    assert Role.supervisor.covers(Role.agent) and not Role.supervisor.covers(Role.admin)
    assert not Role.agent.covers(Role.supervisor)
    assert auth.Principal("a", Role.supervisor).has("agent")


def test_csrf_token_is_per_session_and_not_the_stored_hash() -> None:
    assert auth.csrf_token("t1") != auth.csrf_token("t2")
    assert auth.csrf_token("t1") == auth.csrf_token("t1")
    assert auth.csrf_token("t1") != auth.token_hash("t1")


def _fail(throttle: LoginThrottle, username: str, address: str) -> None:
    """One wrong password: counted up front, nothing more to do."""
    assert isinstance(throttle.reserve(username, address), auth.Ticket)


def test_throttle_counts_failures_per_username_and_address(clock: Clock) -> None:
    throttle = LoginThrottle(3, timedelta(seconds=60), clock)
    for _ in range(3):
        assert throttle.retry_after("ayse", "10.0.0.1") == 0
        _fail(throttle, "Ayse", "10.0.0.1")
        clock.advance(10)
    assert throttle.retry_after("ayse", "10.0.0.1") == pytest.approx(30)  # the first failure ages out at 60 s
    assert throttle.reserve("ayse", "10.0.0.1") == pytest.approx(30)  # a refused attempt is not counted
    assert throttle.retry_after("ayse", "10.0.0.2") == 0  # another address
    assert throttle.retry_after("mehmet", "10.0.0.1") == 0  # another user
    clock.advance(31)
    assert throttle.retry_after("ayse", "10.0.0.1") == 0
    ticket = throttle.reserve("ayse", "10.0.0.1")
    assert isinstance(ticket, auth.Ticket)
    throttle.succeeded(ticket)  # the right password clears this pair's two remaining failures
    assert throttle.retry_after("ayse", "10.0.0.1") == 0
    assert len(throttle._pairs.times) == 0


def test_attempts_are_counted_before_the_password_is_checked(clock: Clock) -> None:
    throttle = LoginThrottle(2, timedelta(seconds=60), clock)
    first, second = throttle.reserve("ayse", "10.0.0.1"), throttle.reserve("ayse", "10.0.0.1")
    assert isinstance(first, auth.Ticket) and isinstance(second, auth.Ticket)
    assert throttle.reserve("ayse", "10.0.0.1") == 60  # both still being checked: no third one
    throttle.release(first)  # never checked (e.g. the server was busy): not a guess
    assert throttle.retry_after("ayse", "10.0.0.1") == 0


def test_one_address_is_limited_across_usernames(clock: Clock) -> None:
    throttle = LoginThrottle(3, timedelta(seconds=60), clock)
    for i in range(12):  # 4 x attempts
        _fail(throttle, f"user{i}", "10.0.0.1")
    assert throttle.retry_after("someone-else", "10.0.0.1") == 60
    assert throttle.retry_after("someone-else", "10.0.0.2") == 0
    assert throttle.retry_after("user0", "10.0.0.2") == 0  # the names it tried are not held up elsewhere


def test_a_username_tried_from_many_addresses_is_slowed_not_locked(clock: Clock) -> None:
    throttle = LoginThrottle(3, timedelta(seconds=60), clock)
    for _ in range(3):
        _fail(throttle, "ayse", "10.0.0.1")
    assert throttle.retry_after("ayse", "10.0.0.1") == 60
    assert throttle.retry_after("ayse", "10.0.0.99") == 0  # one address cannot hold her up for everyone
    for n in range(2, 5):  # a spray from three more addresses: 12 = 4 x attempts in all
        clock.advance(5)
        for _ in range(3):
            _fail(throttle, "ayse", f"10.0.0.{n}")
    assert throttle.retry_after("ayse", "10.0.0.99") == 45  # slowed, from any address
    assert throttle.retry_after("mehmet", "10.0.0.99") == 0
    clock.advance(45)  # the oldest three guesses age out: room for three more, not a lockout
    for n in range(97, 100):
        _fail(throttle, "ayse", f"10.0.0.{n}")
    assert throttle.retry_after("ayse", "10.0.0.96") == 5


def test_throttle_memory_is_bounded(clock: Clock) -> None:
    throttle = LoginThrottle(1, timedelta(seconds=60), clock, max_keys=100)
    for i in range(1000):
        throttle.reserve(f"user{i}", f"10.0.{i // 256}.{i % 256}")
    for window in (throttle._pairs, throttle._addresses, throttle._users):
        assert len(window.times) == 100
        assert all(len(times) <= window.limit for times in window.times.values())
    assert (
        throttle.retry_after("user999", "10.0.3.231") > 0 and throttle.retry_after("user0", "10.0.0.0") == 0
    )


async def test_hashing_is_bounded_and_refuses_beyond_its_queue() -> None:
    gate = auth.HashGate(running=1, waiting=1)
    go_on, hashing = threading.Event(), threading.Event()

    def slow_hash() -> bool:
        hashing.set()
        return go_on.wait(10)

    first = asyncio.create_task(gate.run(slow_hash))
    second = asyncio.create_task(gate.run(slow_hash))
    # Once the first hash is running in its thread, both tasks have reached the gate (they were
    # ready before this wait began).
    assert await asyncio.to_thread(hashing.wait, 5)
    assert gate.in_flight == 2
    with pytest.raises(auth.HashingBusy):
        await gate.run(go_on.wait, 10)
    go_on.set()
    assert await first and await second
    assert gate.in_flight == 0
    assert await gate.run(len, "abc") == 3


async def test_users_are_checked_when_added(web_store: Store) -> None:
    users = Users(web_store)
    await users.add("ayse", "supervisor", "uzun-parola", "Ayşe Yılmaz", "1001")
    with pytest.raises(UserError, match="already exists"):
        await users.add("ayse", "agent", "uzun-parola")
    with pytest.raises(UserError, match="role"):
        await users.add("ali", "boss", "uzun-parola")
    with pytest.raises(UserError, match="at least 8"):
        await users.add("ali", "agent", "kısa")
    with pytest.raises(UserError, match="at most 1024"):
        await users.add("ali", "agent", "x" * 1025)
    with pytest.raises(UserError, match="username"):
        await users.add("a" * 65, "agent", "uzun-parola")
    with pytest.raises(UserError, match="username"):
        await users.add("ali veli", "agent", "uzun-parola")
    [stored] = await users.list()
    assert (stored.username, stored.role, stored.agent_id, stored.display_name) == (
        "ayse", "supervisor", "1001", "Ayşe Yılmaz"
    )  # fmt: skip
    assert "uzun-parola" not in stored.password_hash


async def test_authenticate_tells_the_log_why_but_not_the_caller(web_store: Store, clock: Clock) -> None:
    service = Auth(web_store, clock=clock)
    await service.users.add("ayse", "agent", "uzun-parola")
    ok = await service.authenticate("ayse", "uzun-parola")
    assert ok.user is not None and ok.reason == "ok"
    assert (await service.authenticate("ayse", "yanlış-parola")).reason == "wrong_password"
    unknown = await service.authenticate("nobody", "uzun-parola")
    assert unknown.user is None and unknown.reason == "unknown_user" and unknown.known_name is None
    await service.users.set_disabled("ayse")
    assert (await service.authenticate("ayse", "uzun-parola")).reason == "disabled"


async def test_a_weak_hash_is_upgraded_at_sign_in(
    web_store: Store, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = Auth(web_store, clock=clock)
    await service.users.add("ayse", "agent", "uzun-parola")
    monkeypatch.setattr(auth, "SCRYPT_N", 2**11)
    assert (await service.authenticate("ayse", "uzun-parola")).user is not None
    stored = await service.users.get("ayse")
    assert stored is not None and stored.password_hash.startswith("scrypt$n=2048,")


async def test_new_password_or_disabling_ends_open_sessions(web_store: Store, clock: Clock) -> None:
    service = Auth(web_store, clock=clock)
    user = await service.users.add("ayse", "agent", "uzun-parola")
    first = await service.open_session(user)
    await service.users.set_password("ayse", "yeni-uzun-parola")
    assert await service.principal(first.token) is None
    second = await service.open_session(user)
    await service.users.set_disabled("ayse")
    assert await service.principal(second.token) is None
    await service.users.set_disabled("ayse", False)
    assert (await service.authenticate("ayse", "yeni-uzun-parola")).user is not None


async def test_expired_sessions_are_purged(web_store: Store, clock: Clock) -> None:
    service = Auth(web_store, auth.SessionPolicy(idle=timedelta(minutes=10)), clock)
    user = await service.users.add("ayse", "agent", "uzun-parola")
    await service.open_session(user)
    clock.advance(601)
    assert await service.purge_expired() == 1


def _secret(settings: Settings, name: str) -> Path:
    return settings.state_path / "secrets" / name


async def test_bootstrap_creates_admin_and_agents_with_private_password_files(
    web_settings: Settings, web_store: Store
) -> None:
    assert await bootstrap_users(web_settings, web_store) == ["admin", "1001", "1002"]
    service = Auth(web_store)
    for username, role, agent_id in (
        ("admin", "admin", None),
        ("1001", "agent", "1001"),
        ("1002", "agent", "1002"),
    ):
        path = _secret(web_settings, f"web-{username}-password")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        attempt = await service.authenticate(username, path.read_text().strip())
        assert attempt.user is not None and (attempt.user.role, attempt.user.agent_id) == (role, agent_id)
    agent = await service.users.get("1001")
    assert agent is not None and agent.display_name == "Ayşe Yılmaz"


async def test_bootstrap_never_overwrites_a_password(web_settings: Settings, web_store: Store) -> None:
    await bootstrap_users(web_settings, web_store)
    generated = _secret(web_settings, "web-admin-password").read_text()
    users = Users(web_store)
    await users.set_password("admin", "seçilmiş-parola")
    _secret(web_settings, "web-1001-password").unlink()  # gone, but the user is still there

    assert await bootstrap_users(web_settings, web_store) == []
    assert _secret(web_settings, "web-admin-password").read_text() == generated
    assert not _secret(web_settings, "web-1001-password").exists()
    assert (await Auth(web_store).authenticate("admin", "seçilmiş-parola")).user is not None


def _cli(settings: Settings, *args: str) -> int:
    config = settings.state_path.parent / "hotline.toml"
    return cli.main(["--config", str(config), "users", *args])


async def test_cli_manages_users_and_never_takes_a_password_as_an_argument(
    web_settings: Settings, web_store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("gizli-parola-1\n")
    add = ("add", "zeynep", "--role", "supervisor", "--agent", "1002", "--name", "Zeynep Kaya")
    assert await asyncio.to_thread(_cli, web_settings, *add, "--password-file", str(secret)) == 0
    assert (await Auth(web_store).authenticate("zeynep", "gizli-parola-1")).user is not None

    with pytest.raises(SystemExit):  # no such option
        _cli(web_settings, "add", "ali", "--role", "agent", "--password", "gizli-parola-1")
    assert await asyncio.to_thread(_cli, web_settings, "add", "ali", "--role", "agent", "--agent", "99",
                                   "--password-file", str(secret)) == 1  # fmt: skip
    assert "no [[agents]] entry has id '99'" in capsys.readouterr().err

    secret.write_text("gizli-parola-2\n")
    assert (
        await asyncio.to_thread(_cli, web_settings, "passwd", "zeynep", "--password-file", str(secret)) == 0
    )
    assert (await Auth(web_store).authenticate("zeynep", "gizli-parola-2")).user is not None
    assert await asyncio.to_thread(_cli, web_settings, "disable", "zeynep") == 0
    assert (await Auth(web_store).authenticate("zeynep", "gizli-parola-2")).reason == "disabled"
    capsys.readouterr()
    assert await asyncio.to_thread(_cli, web_settings, "list") == 0
    listed = capsys.readouterr().out
    assert "zeynep" in listed and "supervisor" in listed and "disabled" in listed
    assert "gizli" not in listed


async def test_cli_passwd_removes_a_stale_generated_password_file(
    web_settings: Settings, web_store: Store, tmp_path: Path
) -> None:
    await bootstrap_users(web_settings, web_store)
    secret = tmp_path / "pw"
    secret.write_text("yeni-yönetici-parolası\n")
    assert await asyncio.to_thread(_cli, web_settings, "passwd", "admin", "--password-file", str(secret)) == 0
    assert not _secret(web_settings, "web-admin-password").exists()


def test_cli_users_needs_an_upgraded_database(
    web_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(web_settings, "list") == 1
    assert "hotline db upgrade" in capsys.readouterr().err
