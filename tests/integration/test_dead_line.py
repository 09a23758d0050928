"""A caller whose line dies without a BYE (phone gone, no media) through real SIP: Asterisk's media
timeout hangs the caller up, the call record closes, and the agent is freed for the next call.

The session Asterisk runs without a media timeout (its SIPp phones send no audio), so this module
starts one of its own with ``rtp_timeout`` of two seconds; its agent phone sends audio all call
long, as a live phone does, so that only the caller's silence can end the call.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from agents.models import AgentEvent
from hotline import asterisk, db
from hotline.app import App, create_app
from hotline.settings import DatabaseSection, Settings
from tests.conftest import make_settings
from tests.harness import sipp
from tests.integration.conftest import QUICK_IVR, QUICK_QUEUES, calls_and_events, ended, leftovers

RTP_TIMEOUT = 2  # seconds
SPEECH = 4.0  # seconds the caller speaks before the line goes dead
WRAP_UP = 1.0


@pytest.fixture(scope="module")
def dead_line_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder = tmp_path_factory.mktemp("dead-line")
    menus, queues = folder / "ivr.toml", folder / "queues.toml"
    menus.write_text(QUICK_IVR, encoding="utf-8")
    assert "[queues.operator]\n" in QUICK_QUEUES
    queues.write_text(
        QUICK_QUEUES.replace("[queues.operator]\n", f"[queues.operator]\nwrap_up = {WRAP_UP}\n"),
        encoding="utf-8",
    )
    rtp = random.randrange(12000, 19000, 2)
    body = f"""
[ari]
url = "http://127.0.0.1:{sipp.free_port(kind=1)}"
[asterisk]
sip_port = {sipp.free_port()}
rtp_start = {rtp}
rtp_end = {rtp + 100}
start_timeout = 120.0
direct = {{ "1830" = "operator" }}
rtp_timeout = {RTP_TIMEOUT}
[speech]
enabled = false
[logging]
format = "json"
[ivr]
menus = "{menus}"
[queues]
file = "{queues}"
[[agents]]
id = "9001"
name = "Test Agent"
languages = ["tr", "en"]
contact = "sip:agent@127.0.0.1:{sipp.free_port()}"
"""
    return make_settings(folder, body)


@pytest.fixture(scope="module")
def dead_line_asterisk(dead_line_settings: Settings) -> Iterator[asterisk.Instance]:
    instance = asterisk.up(dead_line_settings)
    yield instance
    asterisk.down(dead_line_settings, purge=True)


@pytest.fixture
async def dead_line_app(
    dead_line_settings: Settings, dead_line_asterisk: asterisk.Instance, tmp_path: Path
) -> AsyncIterator[App]:
    url = f"sqlite:///{tmp_path / 'hotline.db'}"
    await db.upgrade_async(url)
    app = create_app(dead_line_settings.model_copy(update={"database": DatabaseSection(url=url)}))
    await app.start(serve_web=False)
    yield app
    await app.close()


def tone(path: Path, seconds: float) -> Path:
    """A 440 Hz tone as 8 kHz mu-law: audio that keeps the media timeout from firing."""
    command = ["sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", str(path)]
    subprocess.run([*command, "synth", str(seconds), "sine", "440"], check=True, capture_output=True)
    return path


async def test_a_caller_whose_line_dies_is_hung_up_and_frees_the_agent(
    dead_line_app: App, dead_line_settings: Settings, dead_line_asterisk: asterisk.Instance, tmp_path: Path
) -> None:
    settings = dead_line_settings
    agent_phone = settings.agents[0].contact.rsplit(":", 1)[1]
    done = ended(dead_line_app)
    notices: list[dict[str, Any]] = []
    async with dead_line_app.queues.notices.subscribe("9001") as stream:
        async with sipp.phone(port=int(agent_phone), audio=tone(tmp_path / "agent.wav", 1.0)) as desk:
            # The caller speaks for a while, then sends nothing more and never hangs up: only the
            # far end ending the call stops it before `hold`.
            result = await sipp.call(
                settings, "1830", say=tone(tmp_path / "caller.wav", SPEECH), hold=60, caller_id="05329990002"
            )
            answered = await desk.result()
        await asyncio.wait_for(done, 30)
        while not any(n.get("presence") == "available" for n in notices):
            notice = await asyncio.wait_for(stream.get(), WRAP_UP + 10)
            assert notice is not None
            notices.append(notice)

    assert "answered" in answered.log  # the agent took the call and heard the caller
    assert result.ok and result.hung_up_by == "remote", result.errors  # Asterisk hung up, not the caller
    assert result.duration < SPEECH + 4 * RTP_TIMEOUT + 10
    log = (Path(dead_line_asterisk.host_dir) / "log" / "messages.log").read_text(errors="replace")
    assert "for lack of audio RTP activity" in log  # ended by the media timeout, nothing else

    [(call, events)] = await calls_and_events(dead_line_app)
    kinds = [e.kind for e in events]
    assert kinds.index("queued") < kinds.index("agent_connected") < kinds.index("ended")
    assert call.outcome == "completed" and call.ended_at is not None
    # The desktop saw the call end, the wrap-up, and the agent ready for the next call.
    presence = [n["presence"] for n in notices if n["type"] == "presence"]
    assert presence[-2:] == ["wrap_up", "available"], notices
    assert any(n["type"] == "ended" and n["call_id"] == call.id for n in notices)
    async with dead_line_app.store.session() as session:
        rows = await session.exec(
            select(AgentEvent).where(AgentEvent.agent_id == "9001").order_by(col(AgentEvent.id))
        )
        stored = [(r.before, r.after) for r in rows.all()]
    assert stored[-2:] == [("on_call", "wrap_up"), ("wrap_up", "available")]
    channels, _ = await leftovers(settings)
    assert channels == []
