"""The IVR with real callers: SIPp dials 183 through the real Asterisk and presses RFC 2833 keys."""

from __future__ import annotations

import asyncio
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from hotline.app import App
from hotline.settings import Settings
from tests.harness import sipp
from tests.integration.conftest import calls_and_events, ended, leftovers
from tickets.models import Ticket

MAIN_MENU = {
    "1": "violence_against_women", "2": "child_protection", "3": "elderly_disabled_care",
    "4": "social_assistance", "5": "martyrs_veterans", "6": "complaints", "0": "operator",
}  # fmt: skip


async def answered_by_the_agent(desk: sipp.Phone, calls: int) -> str:
    """The agent's phone took every routed call (and hung up after a moment of talk); its log."""
    result = await desk.result()
    assert result.ok, result.errors
    assert result.log.count("answered") == calls
    return result.log


async def test_each_main_menu_key_reaches_its_queue(app: App, settings: Settings, phone_port: int) -> None:
    # Seven callers at once: Turkish (1), then one main-menu key each, typed over the prompts.
    done = ended(app, count=len(MAIN_MENU))
    async with sipp.phone(port=phone_port, calls=len(MAIN_MENU), talk_ms=300) as desk:
        callers = [
            sipp.call(settings, "183", digits="1" + digit, hold=90, caller_id=f"0532000000{digit}")
            for digit in MAIN_MENU
        ]
        results = await asyncio.gather(*callers)
        desk_log = await answered_by_the_agent(desk, len(MAIN_MENU))
    # The agent's phone shows what the caller chose.
    assert '"Çocuk koruma: Test Caller"' in desk_log and '"Operatör: Test Caller"' in desk_log
    assert all(r.ok and r.hung_up_by == "remote" for r in results), [r.errors for r in results]
    await asyncio.wait_for(done, 30)
    routed = {call.caller_number[-1]: call for call, _ in await calls_and_events(app)}
    assert {digit: call.queue for digit, call in routed.items()} == MAIN_MENU
    for digit, call in routed.items():
        assert call.outcome == "completed" and call.language == "tr" and not call.urgent
        assert call.category == (None if digit == "0" else MAIN_MENU[digit])


async def test_english_and_arabic_callers_hear_their_language(
    app: App, settings: Settings, phone_port: int
) -> None:
    done = ended(app, count=2)
    async with sipp.phone(port=phone_port, calls=2, talk_ms=300) as desk:
        await asyncio.gather(
            sipp.call(settings, "183", digits="26", hold=30, caller_id="05320000002"),
            sipp.call(settings, "183", digits="36", hold=30, caller_id="05320000003"),
        )
        await answered_by_the_agent(desk, 2)
    await asyncio.wait_for(done, 30)
    by_number = {call.caller_number: (call, events) for call, events in await calls_and_events(app)}
    for number, language in (("05320000002", "en"), ("05320000003", "ar")):
        call, events = by_number[number]
        assert call.language == language and call.queue == "complaints"
        prompts = [e.data["prompts"] for e in events if e.kind == "prompt"]
        assert prompts[-1] == [f"connecting/{language}"]


async def test_nine_mid_prompt_marks_the_call_urgent_at_once(
    app: App, settings: Settings, phone_port: int
) -> None:
    done = ended(app)
    async with sipp.phone(port=phone_port, talk_ms=300) as desk:
        result = await sipp.call(settings, "183", digits="9", hold=30)
        assert '"Acil: Test Caller"' in await answered_by_the_agent(desk, 1)
    assert result.ok, result.errors
    await asyncio.wait_for(done, 30)
    [(call, events)] = await calls_and_events(app)
    kinds = [e.kind for e in events]
    assert call.urgent and call.queue == "emergency"
    # The key came during the welcome: nothing else was played before the emergency notice.
    prompts = [e.data["prompts"] for e in events if e.kind == "prompt"]
    assert prompts[1:] == [["emergency/tr"]]
    assert kinds.index("urgent") < kinds.index("ivr_done")
    urgent_at = next(e.at for e in events if e.kind == "urgent")
    key_at = next(e.at for e in events if e.kind == "dtmf")
    assert (urgent_at - key_at).total_seconds() < 1


async def test_a_wrong_key_gets_the_retry_prompt(app: App, settings: Settings) -> None:
    done = ended(app)
    result = await sipp.call(settings, "183", digits="17", hold=3)
    assert result.ok and result.hung_up_by == "local", result.errors
    await asyncio.wait_for(done, 30)
    [(call, events)] = await calls_and_events(app)
    prompts = [e.data["prompts"] for e in events if e.kind == "prompt"]
    assert prompts[-1] == ["invalid/tr", "main_menu/tr"]
    assert call.outcome == "abandoned_in_ivr"


async def test_hanging_up_mid_prompt_leaves_nothing_behind(app: App, settings: Settings) -> None:
    done = ended(app)
    result = await sipp.call(settings, "183", hold=2)
    assert result.ok and result.hung_up_by == "local", result.errors
    await asyncio.wait_for(done, 30)
    [(call, events)] = await calls_and_events(app)
    assert call.outcome == "abandoned_in_ivr"
    assert "ivr_done" not in [e.kind for e in events]
    assert await leftovers(settings) == ([], [])
    playbacks = [e for e in events if e.kind == "prompt"]
    assert len(playbacks) == 1  # the welcome was playing when the caller left
    assert app.flow.live_calls == 0


async def test_silence_repeats_the_menus_then_reaches_the_operator(
    quick_app: App, settings: Settings, phone_port: int
) -> None:
    done = ended(quick_app)
    async with sipp.phone(port=phone_port, talk_ms=300) as desk:
        result = await sipp.call(settings, "183", hold=30)
        await answered_by_the_agent(desk, 1)
    assert result.ok and result.hung_up_by == "remote", result.errors
    await asyncio.wait_for(done, 30)
    [(call, events)] = await calls_and_events(quick_app)
    prompts = [e.data["prompts"] for e in events if e.kind == "prompt"]
    assert prompts == [
        ["language/tr"], ["no_input/tr", "language/tr"],
        ["main/tr"], ["no_input/tr", "main/tr"],
        ["connecting/tr"],
    ]  # fmt: skip
    assert call.queue == "operator" and call.outcome == "completed"


@pytest.fixture
def speech(tmp_path: Path) -> Path:
    wav = tmp_path / "speech.wav"
    subprocess.run(["flite", "-voice", "rms", "-t", "Please help me.", "-o", str(wav)], check=True)
    return wav


async def test_hotline_call_command_presses_digits_and_speaks(
    app: App, settings: Settings, speech: Path, phone_port: int
) -> None:
    done = ended(app)
    config = settings.state_path.parent / "hotline.toml"
    async with sipp.phone(port=phone_port, talk_ms=300) as desk:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hotline.cli", "--config", str(config),
            "call", "183", "--digits", "12", "--say", str(speech), "--hold", "30",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(process.communicate(), 90)
        await answered_by_the_agent(desk, 1)
    assert process.returncode == 0, output.decode()
    assert output.decode().startswith("call ok") and "the hotline hung up" in output.decode()
    await asyncio.wait_for(done, 10)
    [(call, events)] = await calls_and_events(app)
    assert [e.data["digit"] for e in events if e.kind == "dtmf"] == ["1", "2"]
    assert call.queue == "child_protection"


@pytest.fixture
def message(tmp_path: Path) -> Path:
    wav = tmp_path / "message.wav"
    subprocess.run(
        ["flite", "-voice", "rms", "-t", "Please call me back tomorrow.", "-o", str(wav)], check=True
    )
    return wav


async def test_a_closed_queue_records_the_callers_message(
    quick_app: App, settings: Settings, message: Path
) -> None:
    done = ended(quick_app)
    # Turkish, the night queue (always closed); speak after the closed notice and the beep.
    result = await sipp.call(settings, "183", digits="12", say=message, speak_after=2.5, hold=3)
    assert result.ok and result.hung_up_by == "local", result.errors
    await asyncio.wait_for(done, 30)
    [(call, events)] = await calls_and_events(quick_app)
    assert call.outcome == "voicemail" and call.queue == "night"
    assert call.voicemail == f"voicemail-{call.id}"
    assert [e.data["prompts"] for e in events if e.kind == "prompt"][-1] == ["closed/tr"]
    audio = await quick_app.ari.recordings.download(call.voicemail)
    samples = struct.unpack(f"<{(len(audio) - 44) // 2}h", audio[44 : 44 + (len(audio) - 44) // 2 * 2])
    assert len(samples) > 8000  # more than a second at 8 kHz
    assert max(abs(x) for x in samples) > 1000  # the caller's voice, not silence
    # The message becomes a case, as a call an agent took would.
    assert quick_app.tickets is not None
    await quick_app.tickets.close()  # the ticket its end opened is written
    async with quick_app.store.session() as session:
        [ticket] = (await session.exec(select(Ticket))).all()
    assert (ticket.call_id, ticket.source, ticket.caller_number) == (call.id, "voicemail", "05321234567")
