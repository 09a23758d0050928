"""Who may use the web desktop: users, roles, password hashes, server-side sessions, bootstrap.

No web framework here: ``hotline.web`` turns these into cookies, headers and status codes.
Passwords are hashed with the standard library's scrypt; a session token is random, handed to the
client once, and stored only as its SHA-256, so a copy of the database opens no session.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
import structlog
from sqlmodel import col, select

from hotline.db import Store
from hotline.logging import scrubber
from hotline.models import WebSession, WebUser, utcnow
from hotline.secrets import secret
from hotline.settings import Settings, WebSection

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

ADMIN = "admin"
MIN_PASSWORD = 8
# Sign-in refuses anything longer before any work (no user can have longer ones).
MAX_USERNAME = 64
MAX_PASSWORD = 1024
USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class Role(StrEnum):
    """Each role can do everything the ones before it can: admin ⊃ supervisor ⊃ agent."""

    agent = "agent"
    supervisor = "supervisor"
    admin = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def covers(self, needed: Role) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user as route handlers see it."""

    username: str
    role: Role
    agent_id: str | None = None
    display_name: str = ""

    def has(self, role: Role | str) -> bool:
        return self.role.covers(Role(role))

    def as_json(self) -> dict[str, str | None]:
        return {
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role.value,
            "agent_id": self.agent_id,
        }


class UserError(Exception):
    """A user cannot be created or changed as asked; the message says why."""


# ---------------------------------------------------------------- passwords

# scrypt at N=2^15, r=8 costs 32 MiB and about 0.1 s of one core; the parameters travel
# in the hash string, so they can be raised later and old hashes still verify (and get upgraded).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_SCRYPT_MAXMEM = 256 * 1024 * 1024


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """``scrypt$n=…,r=…,p=…$<salt>$<key>`` with a fresh 16-byte salt."""
    n, r, p = SCRYPT_N, SCRYPT_R, SCRYPT_P
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=32)
    return f"scrypt$n={n},r={r},p={p}${_b64(salt)}${_b64(key)}"


def _parse(stored: str) -> tuple[dict[str, int], bytes, bytes]:
    scheme, params, salt, key = stored.split("$")
    if scheme != "scrypt":
        raise ValueError(f"unknown password scheme {scheme!r}")
    values = {name: int(value) for name, value in (item.split("=") for item in params.split(","))}
    return values, _unb64(salt), _unb64(key)


def verify_password(password: str, stored: str) -> bool:
    try:
        params, salt, key = _parse(stored)
        got = hashlib.scrypt(
            password.encode(), salt=salt, n=params["n"], r=params["r"], p=params["p"],
            maxmem=_SCRYPT_MAXMEM, dklen=len(key),
        )  # fmt: skip
    except (ValueError, KeyError):
        return False
    return hmac.compare_digest(got, key)


def needs_rehash(stored: str) -> bool:
    try:
        params, _, _ = _parse(stored)
    except (ValueError, KeyError):
        return True
    return (params["n"], params["r"], params["p"]) < (SCRYPT_N, SCRYPT_R, SCRYPT_P)


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the username is unknown, so a wrong name costs as long as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))


# scrypt is slow and memory hungry: it runs off the event loop, and a burst of sign-ins gets two
# threads, never every core the calls need.
_hashing = ThreadPoolExecutor(max_workers=2, thread_name_prefix="scrypt")


async def _in_thread(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_hashing, fn, *args)


class HashingBusy(Exception):
    """Too many password checks are already running or queued; try again in a moment."""


class HashGate:
    """At most ``running`` password hashes at once and ``waiting`` more queued behind them; one
    more is refused at once with ``HashingBusy`` instead of piling up memory and latency.

    A slot is held until its hash is done, even when the request that asked for it is gone.
    """

    def __init__(self, running: int = 2, waiting: int = 16) -> None:
        self.running, self.waiting = running, waiting
        self._slots = asyncio.Semaphore(running)
        self.in_flight = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self.in_flight >= self.running + self.waiting:
            raise HashingBusy()
        self.in_flight += 1
        try:
            await self._slots.acquire()
        except BaseException:
            self.in_flight -= 1
            raise
        job = asyncio.get_running_loop().run_in_executor(_hashing, fn, *args)

        def done(_: object) -> None:
            self._slots.release()
            self.in_flight -= 1

        job.add_done_callback(done)
        return await asyncio.shield(job)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"the password must have at most {MAX_PASSWORD} characters")


# ---------------------------------------------------------------- tokens


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(token: str) -> str:
    """The anti-CSRF value of a session: derived from the token, so nothing more is stored, and
    different from the stored hash, so a database copy does not give it away."""
    return _b64(hashlib.sha256(b"hotline-csrf\0" + token.encode()).digest())


# ---------------------------------------------------------------- users


def _principal(user: WebUser) -> Principal:
    return Principal(user.username, Role(user.role), user.agent_id, user.display_name)


class Users:
    """Creating, listing and changing web users (the CLI and the bootstrap use this)."""

    def __init__(self, store: Store, clock: Clock = utcnow) -> None:
        self.store = store
        self.clock = clock

    async def get(self, username: str) -> WebUser | None:
        async with self.store.session() as session:
            return (await session.exec(select(WebUser).where(WebUser.username == username))).first()

    async def list(self) -> Sequence[WebUser]:
        async with self.store.session() as session:
            return (await session.exec(select(WebUser).order_by(col(WebUser.username)))).all()

    async def add(
        self,
        username: str,
        role: Role | str,
        password: str,
        display_name: str = "",
        agent_id: str | None = None,
    ) -> WebUser:
        if not username or not set(username) <= USERNAME_CHARS or len(username) > MAX_USERNAME:
            raise UserError(f"username {username!r}: use 1 to 64 letters, digits, '.', '_' or '-'")
        try:
            role = Role(role)
        except ValueError:
            raise UserError(f"role {role!r}: must be one of {', '.join(Role)}") from None
        check_password_rules(password)
        user = WebUser(
            username=username,
            display_name=display_name or username,
            role=role.value,
            agent_id=agent_id,
            password_hash=await _in_thread(hash_password, password),
            created_at=self.clock(),
        )
        async with self.store.session() as session:
            session.add(user)
            try:
                await session.commit()
            except sa.exc.IntegrityError:
                raise UserError(f"user {username!r} already exists") from None
        log.info("web_user_added", username=username, role=role.value, agent_id=agent_id)
        return user

    async def _update(self, username: str, end_sessions: bool, **values: object) -> WebUser:
        async with self.store.session() as session:
            user = (await session.exec(select(WebUser).where(WebUser.username == username))).first()
            if user is None:
                raise UserError(f"no user {username!r}")
            for name, value in values.items():
                setattr(user, name, value)
            session.add(user)
            if end_sessions:
                await session.exec(sa.delete(WebSession).where(col(WebSession.user_id) == user.id))
            await session.commit()
            return user

    async def set_password(self, username: str, password: str) -> WebUser:
        """A new password ends the user's open sessions."""
        check_password_rules(password)
        user = await self._update(username, True, password_hash=await _in_thread(hash_password, password))
        log.info("web_password_changed", username=username)
        return user

    async def rehash(self, username: str, password: str) -> WebUser:
        """The same password under today's scrypt parameters; sessions stay open."""
        return await self._update(username, False, password_hash=await _in_thread(hash_password, password))

    async def set_disabled(self, username: str, disabled: bool = True) -> WebUser:
        """Disabling ends the user's open sessions at once."""
        user = await self._update(username, disabled, disabled=disabled)
        log.info("web_user_disabled" if disabled else "web_user_enabled", username=username)
        return user


# ---------------------------------------------------------------- bootstrap


def password_file(username: str) -> str:
    """The secrets file holding a generated web password (``web-<username>-password``)."""
    return f"web-{username}-password"


async def bootstrap_users(settings: Settings, store: Store, users: Users | None = None) -> list[str]:
    """Make sure ``admin`` and one agent user per ``[[agents]]`` entry exist; return who was created.

    A new user's password is generated into the secrets folder (0600). Existing users are left
    exactly as they are, so a password changed with ``hotline users passwd`` stays changed.
    """
    users = users or Users(store)
    wanted: list[tuple[str, Role, str, str | None]] = [(ADMIN, Role.admin, "Yönetici / Administrator", None)]
    wanted += [(agent.id, Role.agent, agent.name, agent.id) for agent in settings.agents]
    created = []
    for username, role, name, agent_id in wanted:
        existing = await users.get(username)
        if existing is not None:
            if agent_id is not None and existing.agent_id != agent_id:
                log.warning("web_user_not_the_agent", username=username, agent_id=agent_id)
            continue
        password = secret(settings, password_file(username))
        scrubber.add(password)
        await users.add(username, role, password, display_name=name, agent_id=agent_id)
        created.append(username)
    return created


# ---------------------------------------------------------------- sessions


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: timedelta = timedelta(hours=2)
    lifetime: timedelta = timedelta(hours=12)
    # last_seen is written at most this often, not on every request.
    touch_every: timedelta = timedelta(seconds=60)

    @classmethod
    def from_settings(cls, web: WebSection) -> SessionPolicy:
        return cls(idle=timedelta(seconds=web.session_idle), lifetime=timedelta(seconds=web.session_lifetime))


@dataclass(frozen=True, slots=True)
class Attempt:
    """How a sign-in went. Only ``user`` may reach the client; the rest is for the log."""

    user: WebUser | None
    reason: str  # ok | unknown_user | wrong_password | disabled
    known_name: str | None = None  # the username, only when such a user exists


@dataclass(frozen=True, slots=True)
class Opened:
    token: str
    principal: Principal
    expires_at: datetime


class Auth:
    """Checks passwords and keeps the session table."""

    def __init__(
        self,
        store: Store,
        policy: SessionPolicy | None = None,
        clock: Clock = utcnow,
        hashing: HashGate | None = None,
    ) -> None:
        self.store = store
        self.policy = policy or SessionPolicy()
        self.clock = clock
        self.users = Users(store, clock)
        self.hashing = hashing or HashGate()

    async def authenticate(self, username: str, password: str) -> Attempt:
        """Check a password; takes as long whether or not the user exists. Raises ``HashingBusy``
        when too many checks are already under way."""
        user = await self.users.get(username)
        stored = user.password_hash if user else _dummy_hash()
        ok = await self.hashing.run(verify_password, password, stored)
        if user is None:
            return Attempt(None, "unknown_user")
        if not ok:
            return Attempt(None, "wrong_password", user.username)
        if user.disabled:
            return Attempt(None, "disabled", user.username)
        if needs_rehash(user.password_hash):
            user = await self.users.rehash(username, password)
        return Attempt(user, "ok", user.username)

    async def open_session(self, user: WebUser) -> Opened:
        assert user.id is not None
        token = secrets.token_urlsafe(32)
        now = self.clock()
        row = WebSession(
            token_hash=token_hash(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.policy.lifetime,
        )
        async with self.store.session() as session:
            session.add(row)
            await session.exec(sa.update(WebUser).where(col(WebUser.id) == user.id).values(last_login_at=now))
            await session.commit()
        await self.purge_expired()
        return Opened(token, _principal(user), row.expires_at)

    async def principal(self, token: str, *, touch: bool = True) -> Principal | None:
        """Who holds this token, or None when the session is unknown, idle too long, past its
        lifetime, or its user is disabled. ``touch=False``: a check that is not activity (an open
        live stream must not keep its session from going idle)."""
        now = self.clock()
        async with self.store.session() as session:
            found = (
                await session.exec(
                    select(WebSession, WebUser)
                    .join(WebUser, col(WebUser.id) == col(WebSession.user_id))
                    .where(WebSession.token_hash == token_hash(token))
                )
            ).first()
            if found is None:
                return None
            row, user = found
            if user.disabled or now >= row.expires_at or now - row.last_seen_at >= self.policy.idle:
                return None
            if touch and now - row.last_seen_at >= self.policy.touch_every:
                row.last_seen_at = now
                session.add(row)
                await session.commit()
            return _principal(user)

    async def close_session(self, token: str) -> None:
        async with self.store.session() as session:
            await session.exec(sa.delete(WebSession).where(col(WebSession.token_hash) == token_hash(token)))
            await session.commit()

    async def purge_expired(self) -> int:
        now = self.clock()
        async with self.store.session() as session:
            result = await session.exec(
                sa.delete(WebSession).where(
                    sa.or_(
                        col(WebSession.expires_at) <= now,
                        col(WebSession.last_seen_at) <= now - self.policy.idle,
                    )
                )
            )
            await session.commit()
            return int(result.rowcount or 0)


# ---------------------------------------------------------------- failed sign-ins


class _Window(Generic[K]):
    """When attempts happened, per key, within a sliding window: at most ``max_keys`` keys (the least
    recently used go first) and at most ``limit`` times per key (only the latest ones matter)."""

    def __init__(self, limit: int, window: timedelta, max_keys: int) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self.times: OrderedDict[K, list[datetime]] = OrderedDict()

    def _recent(self, key: K, now: datetime) -> list[datetime]:
        recent = [at for at in self.times.get(key, []) if at > now - self.window]
        if recent:
            self.times[key] = recent
        else:
            self.times.pop(key, None)
        return recent

    def wait(self, key: K, now: datetime) -> float:
        """Seconds until the key is under its limit again; 0 when it is now."""
        recent = self._recent(key, now)
        if len(recent) < self.limit:
            return 0.0
        return max(1.0, (recent[-self.limit] + self.window - now).total_seconds())

    def add(self, key: K, at: datetime) -> None:
        self.times[key] = [*self._recent(key, at), at][-self.limit :]
        self.times.move_to_end(key)
        while len(self.times) > self.max_keys:
            self.times.popitem(last=False)

    def remove(self, key: K, at: datetime) -> None:
        times = self.times.get(key)
        if times and at in times:
            times.remove(at)
            if not times:
                del self.times[key]

    def clear(self, key: K) -> None:
        self.times.pop(key, None)


@dataclass(frozen=True, slots=True)
class Ticket:
    """One sign-in attempt, counted by ``LoginThrottle.reserve`` before its password is checked."""

    username: str  # lower-cased
    address: str
    at: datetime


class LoginThrottle:
    """Sign-in attempts in a sliding window, kept in memory: per process, forgotten on restart.

    An attempt is counted when it starts, before its password is checked, so parallel guesses
    cannot all slip past the check together; a successful attempt is taken back, and one that
    fails stays counted. Three limits, each answering "wait" (429 with Retry-After) until the
    oldest attempt it counts is ``window`` old, never longer:

    * per username and address, ``attempts``: what someone mistyping their password meets; a
      success from that address clears it;
    * per address, across usernames, ``spread x attempts``: one address trying many users;
    * per username, across addresses, ``spread x attempts``: many addresses trying one user.
      Each address meets its own per-pair limit long before, so no single address can hold a
      user up for everyone; guesses from many addresses are slowed to this many per window.

    A success takes its own attempt back from the address and username counts but clears
    nothing else there, so signing in to one's own account does not reset an address's count.
    Memory is bounded: each of the three maps holds at most ``max_keys`` keys (the least
    recently used go first) and each key at most its limit of times.
    """

    def __init__(
        self,
        attempts: int,
        window: timedelta,
        clock: Clock = utcnow,
        max_keys: int = 10000,
        spread: int = 4,
    ) -> None:
        self.attempts = attempts
        self.window = window
        self.clock = clock
        self._pairs: _Window[tuple[str, str]] = _Window(attempts, window, max_keys)
        self._addresses: _Window[str] = _Window(spread * attempts, window, max_keys)
        self._users: _Window[str] = _Window(spread * attempts, window, max_keys)

    def _wait(self, username: str, address: str, now: datetime) -> float:
        return max(
            self._pairs.wait((username, address), now),
            self._addresses.wait(address, now),
            self._users.wait(username, now),
        )

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until this username may try again from this address; 0 when it may now."""
        return self._wait(username.lower(), address, self.clock())

    def reserve(self, username: str, address: str) -> Ticket | float:
        """Count an attempt before checking its password, or say how many seconds to wait first.
        A failed attempt needs nothing more; pass a successful one to ``succeeded``, and one that
        never got its password checked to ``release``."""
        username, now = username.lower(), self.clock()
        wait = self._wait(username, address, now)
        if wait:
            return wait
        self._pairs.add((username, address), now)
        self._addresses.add(address, now)
        self._users.add(username, now)
        return Ticket(username, address, now)

    def release(self, ticket: Ticket) -> None:
        """Take back an attempt whose password was never checked."""
        self._pairs.remove((ticket.username, ticket.address), ticket.at)
        self._addresses.remove(ticket.address, ticket.at)
        self._users.remove(ticket.username, ticket.at)

    def succeeded(self, ticket: Ticket) -> None:
        self.release(ticket)
        self._pairs.clear((ticket.username, ticket.address))
