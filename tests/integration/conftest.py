"""A real Asterisk 22 for the whole test session, on free loopback ports, torn down at the end."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from ari import AriClient
from hotline import asterisk, db
from hotline.app import App, create_app
from hotline.models import Call, CallEvent
from hotline.settings import DatabaseSection, IvrSection, QueuesSection, Settings
from tests.conftest import make_settings
from tests.harness.sipp import free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def phone_port() -> int:
    """Where the test agent's SIPp phone listens (its AOR has a fixed contact)."""
    return free_port()


@pytest.fixture(scope="session")
def second_phone_port() -> int:
    """The second agent's phone. Asterisk knows both agents; most tests' hotline seats only the first,
    and the dialplan fallback rings both."""
    return free_port()


@pytest.fixture(scope="session")
def desk_ports() -> list[int]:
    """The paging desks of the tests' escalation.toml (PAGING): a police desk and a backup desk."""
    return [free_port(), free_port()]


@pytest.fixture(scope="session")
def hook_port() -> int:
    """Where the tests' webhook receiver listens (the PAGING targets hook_desk and hook_backup)."""
    return free_port(kind=1)


@pytest.fixture(scope="session")
def more_phone_ports() -> list[int]:
    """Phones of agents 9003-9005: Asterisk knows them for the tests that need five desks (load)."""
    return [free_port() for _ in range(3)]


def quick_wrap_up(shipped: Path, target: Path, seconds: float = 0.5) -> Path:
    """The shipped queues with a short wrap-up, so one test agent can take calls back to back."""
    lines = [
        line for line in shipped.read_text(encoding="utf-8").splitlines() if not line.startswith("wrap_up")
    ]
    out = []
    for line in lines:
        out.append(line)
        if line.startswith("[queues."):
            out.append(f"wrap_up = {seconds}")
    target.write_text("\n".join(out) + "\n", encoding="utf-8")
    return target


@pytest.fixture(scope="session")
def hotline_settings(
    tmp_path_factory: pytest.TempPathFactory,
    phone_port: int,
    second_phone_port: int,
    more_phone_ports: list[int],
    desk_ports: list[int],
    hook_port: int,
) -> Settings:
    folder = tmp_path_factory.mktemp("hotline")
    (folder / "hook.key").write_text("test-webhook-secret\n", encoding="utf-8")
    paging = folder / "escalation.toml"
    paging.write_text(
        PAGING.format(police=desk_ports[0], backup=desk_ports[1], hook=hook_port, folder=folder),
        encoding="utf-8",
    )
    rtp = random.randrange(20000, 29000, 2)
    queues = quick_wrap_up(Path("config/queues.toml"), folder / "queues.toml")
    more_agents = "".join(
        f'[[agents]]\nid = "{9003 + n}"\nname = "Agent {9003 + n}"\nlanguages = ["tr", "en", "ar"]\n'
        f'contact = "sip:agent@127.0.0.1:{port}"\n'
        for n, port in enumerate(more_phone_ports)
    )
    body = f"""
[ari]
url = "http://127.0.0.1:{free_port(kind=1)}"
[asterisk]
sip_port = {free_port()}
rtp_start = {rtp}
rtp_end = {rtp + 400}
start_timeout = 120.0
direct = {{ "1830" = "operator" }}
# No media timeout on this Asterisk: the SIPp callers and phones of these tests send no audio
# beyond their keys and speech (a real phone sends it all call long), so a caller waiting in a
# queue longer than rtp_timeout would be cut for that. test_dead_line.py runs its own Asterisk
# with a short one.
rtp_timeout = 0
[escalation]
file = "{paging}"
[speech]
# Transcription is switched on by the tests about it (tests/integration/test_transcripts.py).
enabled = false
rtp_start = {rtp + 1000}
rtp_end = {rtp + 1400}
[logging]
format = "json"
[queues]
file = "{queues}"
[[agents]]
id = "9001"
name = "Test Agent"
languages = ["tr", "en", "ar"]
skills = {{ violence = 5, child = 5 }}
contact = "sip:agent@127.0.0.1:{phone_port}"
[[agents]]
id = "9002"
name = "Second Agent"
languages = ["tr", "en", "ar"]
contact = "sip:agent@127.0.0.1:{second_phone_port}"
{more_agents}[[agents]]
id = "9009"
name = "Unregistered Agent"
languages = ["tr", "en", "ar"]
"""
    return make_settings(Path(folder), body)


@pytest.fixture(scope="session")
def asterisk_instance(hotline_settings: Settings) -> Iterator[asterisk.Instance]:
    instance = asterisk.up(hotline_settings)
    yield instance
    asterisk.down(hotline_settings, purge=True)


@pytest.fixture
async def settings(
    hotline_settings: Settings, asterisk_instance: asterisk.Instance, tmp_path: Path
) -> AsyncIterator[Settings]:
    """Session Asterisk, a fresh upgraded SQLite database, and one agent (9001) at work."""
    url = f"sqlite:///{tmp_path / 'hotline.db'}"
    await db.upgrade_async(url)
    one_agent = [a for a in hotline_settings.agents if a.id == "9001"]
    # Paging is switched on by the tests about it (tests/integration/test_escalation.py).
    quiet = hotline_settings.escalation.model_copy(update={"enabled": False})
    yield hotline_settings.model_copy(
        update={"database": DatabaseSection(url=url), "agents": one_agent, "escalation": quiet}
    )


# Two desks at fixed SIPp phones, short timers: the police desk first, then the backup desk.
PAGING = """
[targets.police_desk]
label = {{ tr = "Polis nöbetçi masası", en = "Police duty desk" }}
voice = {{ contact = "sip:desk@127.0.0.1:{police}" }}
[targets.backup_desk]
label = {{ tr = "Yedek masa", en = "Backup desk" }}
language = "en"
voice = {{ contact = "sip:desk@127.0.0.1:{backup}" }}
[targets.hook_desk]
label = {{ tr = "Web kancası", en = "Webhook desk" }}
webhook = {{ url = "http://127.0.0.1:{hook}/pages", secret_file = "{folder}/hook.key" }}
[targets.hook_backup]
label = {{ tr = "Yedek web kancası", en = "Backup webhook" }}
webhook = {{ url = "http://127.0.0.1:{hook}/backup", secret_file = "{folder}/hook.key" }}
[voice]
ring_timeout = 5
plays = 2
[[policies]]
id = "hooks"  # violence (the urgent button's category in the tests): webhooks only
categories = ["violence"]
levels = [
  {{ targets = ["hook_desk"], ack_timeout = 10 }},
  {{ targets = ["hook_backup"], ack_timeout = 60 }},
]
[[policies]]
id = "default"
categories = ["*"]
levels = [
  {{ targets = ["police_desk"], ack_timeout = 8 }},
  {{ targets = ["backup_desk"], ack_timeout = 60 }},
]
"""

QUICK_QUEUES = """
[queues.help]
label = { tr = "Yardım", en = "Help" }
ring_timeout = 3.0
max_no_answer = 1
wrap_up = 0.5
[queues.busy]
label = { tr = "Yoğun", en = "Busy" }
max_wait = 2.0
overflow = "operator"
[queues.night]
label = { tr = "Gece", en = "Night" }
schedule = "never"
[queues.operator]
label = { tr = "Operatör", en = "Operator" }
[queues.emergency]
label = { tr = "Acil", en = "Emergency" }
strategy = "ring_all"
language_required = false
wrap_up = 0.5
[schedules.always]
always_open = true
[schedules.never]
hours = {}
"""

QUICK_IVR = """
[menu]
start = "language"
invalid = "invalid"
no_input = "no_input"
connecting = "connecting"
closed = "closed"
timeout = 1.0
retries = 1

[nodes.language]
prompt = "language"
options."1" = { language = "tr", goto = "main" }
options."2" = { language = "en", goto = "main" }
on_fail = { language = "tr", goto = "main" }

[nodes.main]
prompt = "main"
options."1" = { queue = "help" }
options."2" = { queue = "night" }
options."3" = { queue = "busy" }
options."9" = { emergency = true }


[prompts.language]
tr = "Bir."
en = "Two."
[prompts.main]
tr = "Yardım."
en = "Help."
[prompts.invalid]
tr = "Hayır."
en = "No."
[prompts.no_input]
tr = "Sessiz."
en = "Silent."
[prompts.connecting]
tr = "Bağlanıyor."
en = "Connecting."
[prompts.closed]
tr = "Kapalı."
en = "Closed."
[prompts.fallback]
tr = "Sorun."
en = "Problem."
[prompts.unreachable]
tr = "Yok."
en = "Nobody."
"""


def quick(settings: Settings, folder: Path, **update: object) -> Settings:
    """Short prompts, one-second key timeouts and fast queues (see QUICK_IVR and QUICK_QUEUES)."""
    menus, queues = folder / "ivr.toml", folder / "queues.toml"
    menus.write_text(QUICK_IVR, encoding="utf-8")
    queues.write_text(QUICK_QUEUES, encoding="utf-8")
    return settings.model_copy(
        update={"ivr": IvrSection(menus=str(menus)), "queues": QueuesSection(file=str(queues)), **update}
    )


@pytest.fixture
async def quick_app(settings: Settings, tmp_path: Path) -> AsyncIterator[App]:
    """The hotline on the quick configuration, with agent 9001."""
    app = create_app(quick(settings, tmp_path))
    await app.start(serve_web=False)
    yield app
    await app.close()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    """The hotline in this process, on the session Asterisk and a fresh database."""
    app = create_app(settings)
    await app.start(serve_web=False)
    yield app
    await app.close()


def ended(app: App, count: int = 1) -> asyncio.Future[list[CallEvent]]:
    """Resolves once ``count`` calls have ended (their 'ended' events committed)."""
    future: asyncio.Future[list[CallEvent]] = asyncio.get_running_loop().create_future()
    seen: list[CallEvent] = []

    def listener(event: CallEvent) -> None:
        if event.kind == "ended":
            seen.append(event)
            if len(seen) == count and not future.done():
                future.set_result(seen)

    app.calls.subscribe(listener)
    return future


async def calls_and_events(app: App) -> list[tuple[Call, list[CallEvent]]]:
    async with app.store.session() as session:
        calls = (await session.exec(select(Call).order_by(col(Call.started_at)))).all()
    return [(call, await app.calls.events(call.id)) for call in calls]


async def leftovers(settings: Settings) -> tuple[list[str], list[str]]:
    """Channels and bridges Asterisk still has."""
    async with AriClient(
        settings.ari.url, settings.ari.user, asterisk.ari_password(settings), settings.ari.app
    ) as client:
        return [c.id for c in await client.channels.list()], [b.id for b in await client.bridges.list()]
