"""A call's transcript over HTTP: who may read which call, what each role sees of it, the plain-text
form, and the transcription figures for supervisors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from hotline.auth import Role, Users
from hotline.calls import CallLog
from hotline.clock import Clock as CallClock
from hotline.db import Store
from hotline.models import CallEventKind
from hotline.settings import Settings
from tests.unit.hotline import conftest as web_shell
from tests.unit.hotline.conftest import Clock
from tests.unit.hotline.test_web import PASSWORD, login, serve
from transcripts.http import TranscriptRoutes
from transcripts.models import Mode, Speaker, TranscriptSegment

Client = TestClient[web.Request, web.Application]

AYSE, MEHMET = "9001", "9002"  # the agent ids of the two agents who sign in
FIGURES = {"live_streams": {"vosk": 1}, "max_streams": {"vosk": 4}, "lag_p95_ms": 180.0, "counts": {}}
# The web shell's fixtures as they are: a SQLite store upgraded to the newest schema, a clock that
# moves only when told, cheap password hashes.
cheap_scrypt = web_shell.cheap_scrypt
clock = web_shell.clock
web_settings = web_shell.web_settings
web_store = web_shell.web_store

NOT_FOUND = {"error": "not_found", "message": "no such call among yours"}


def at(second: int, micro: int = 0) -> datetime:
    return datetime(2026, 11, 23, 9, 0, second, micro, tzinfo=UTC)


@dataclass
class Calls:
    """The calls on record (ids) and the transcript rows of Ayşe's call, as inserted."""

    mine: str  # Ayşe took it (agent_connected), after Mehmet let it ring
    readopted: str  # Ayşe was still on it when the hotline reconnected
    called_back: str  # Ayşe called the caller back
    mehmets: str  # Mehmet took it
    offered_to_me: str  # rang Ayşe, she did not answer, Mehmet took it
    segments: list[TranscriptSegment]


def segment(call_id: str, speaker: Speaker, start: datetime, text: str, **fields: Any) -> TranscriptSegment:
    defaults: dict[str, Any] = {"engine": "vosk", "language": "tr", "confidence": 0.9}
    return TranscriptSegment(
        call_id=call_id,
        speaker=speaker,
        start_at=start,
        end_at=start.replace(second=start.second + 1),
        text=text,
        **{**defaults, **fields},
    )


@pytest.fixture
async def calls(web_store: Store, clock: Clock) -> Calls:
    log = CallLog(web_store, CallClock(wall=clock))
    ids = []
    for n in range(5):
        call, created = await log.open(f"chan-{n}", caller_number=f"0532000000{n}")
        assert created
        ids.append(call.id)
    mine, readopted, called_back, mehmets, offered_to_me = ids
    await log.record(mine, CallEventKind.offered, agent=MEHMET)
    await log.record(mine, CallEventKind.agent_no_answer, agent=MEHMET, status="timeout")
    await log.record(mine, CallEventKind.agent_connected, agent=AYSE, agent_channel="PJSIP/9001-1")
    await log.record(readopted, CallEventKind.readopted_with_agent, agent=AYSE, agent_channel="PJSIP/9001-2")
    await log.record(called_back, CallEventKind.callback_connected, outbound_call_id="x", agent=AYSE)
    await log.record(mehmets, CallEventKind.agent_connected, agent=MEHMET, agent_channel="PJSIP/9002-1")
    await log.record(offered_to_me, CallEventKind.offered, agent=AYSE)
    await log.record(offered_to_me, CallEventKind.agent_no_answer, agent=AYSE, status="timeout")
    await log.record(offered_to_me, CallEventKind.agent_connected, agent=MEHMET, agent_channel="PJSIP/9002-2")
    await log.flush()

    # Inserted out of order: the transcript comes back by start time (then by id for a tie).
    segments = [
        segment(mine, Speaker.caller, at(5), "Komşumun çocuğu sürekli ağlıyor, çok endişeliyim."),
        segment(
            mine, Speaker.agent, at(2), "Alo 183, buyurun. Size nasıl yardımcı olabilirim?", agent_id=AYSE
        ),
        segment(
            mine,
            Speaker.caller,
            at(9, 500000),
            "Beni [telefon] numarasından arayın.",
            raw_text="Beni 0532 123 45 67 numarasından arayın.",
            redacted=["phone"],
            confidence=0.75,
        ),
        segment(
            mine,
            Speaker.agent,
            at(12),
            "Ekibimiz sizi arayacak, İstanbul'dasınız değil mi?",
            agent_id=AYSE,
            engine="whisper",
            mode=Mode.after_call,
            confidence=None,
        ),
        segment(mine, Speaker.caller, at(9), "Şöyle anlatayım.", raw_text="Şöyle anlatayım."),
    ]
    others = [
        segment(readopted, Speaker.caller, at(3), "Hâlâ hattayım."),
        segment(called_back, Speaker.agent, at(4), "Geri arıyorum.", agent_id=AYSE),
        segment(mehmets, Speaker.caller, at(1), "Mehmet Bey'le konuşuyorum.", raw_text="gizli"),
        segment(offered_to_me, Speaker.caller, at(1), "Sıradayım."),
    ]
    async with web_store.session() as session:
        session.add_all([*segments, *others])
        await session.commit()
    return Calls(mine, readopted, called_back, mehmets, offered_to_me, segments)


@pytest.fixture
def raw_roles() -> list[str]:
    return ["admin"]


@pytest.fixture
async def client(
    web_settings: Settings,
    web_store: Store,
    clock: Clock,
    calls: Calls,
    raw_roles: list[str],
) -> AsyncIterator[Client]:
    users = Users(web_store, clock)
    await users.add("ayse", Role.agent, PASSWORD, "Ayşe Yılmaz", AYSE)
    await users.add("mehmet", Role.agent, PASSWORD, "Mehmet Demir", MEHMET)
    await users.add("ali", Role.agent, PASSWORD, "Ali Kaya")  # signs in, but is no agent
    await users.add("sema", Role.supervisor, PASSWORD, "Sema Kaya")
    await users.add("admin", Role.admin, PASSWORD)
    routes = TranscriptRoutes(web_store, CallLog(web_store), raw_roles, lambda: dict(FIGURES))
    async with serve(web_settings, web_store, clock, [routes.install]) as client:
        yield client


async def bearer(client: Client, username: str) -> dict[str, str]:
    token = (await login(client, username, PASSWORD, bearer=True))["token"]
    return {"Authorization": f"Bearer {token}"}


async def get_json(client: Client, path: str, who: dict[str, str] | None = None) -> tuple[int, Any]:
    async with client.get(path, headers=who) as r:
        assert r.content_type == "application/json", await r.text()
        return r.status, await r.json()


async def get_text(client: Client, path: str, who: dict[str, str]) -> tuple[int, str, str]:
    async with client.get(path, headers=who) as r:
        return r.status, r.headers["Content-Type"], await r.text()


# The segments of Ayşe's call as an agent and a supervisor see them: by start time, redacted only.
SHOWN: list[dict[str, Any]] = [
    {
        "speaker": "agent",
        "agent_id": AYSE,
        "start": "2026-11-23T09:00:02+00:00",
        "end": "2026-11-23T09:00:03+00:00",
        "text": "Alo 183, buyurun. Size nasıl yardımcı olabilirim?",
        "confidence": 0.9,
        "engine": "vosk",
        "language": "tr",
        "mode": "live",
        "redacted": [],
    },
    {
        "speaker": "caller",
        "agent_id": None,
        "start": "2026-11-23T09:00:05+00:00",
        "end": "2026-11-23T09:00:06+00:00",
        "text": "Komşumun çocuğu sürekli ağlıyor, çok endişeliyim.",
        "confidence": 0.9,
        "engine": "vosk",
        "language": "tr",
        "mode": "live",
        "redacted": [],
    },
    {
        "speaker": "caller",
        "agent_id": None,
        "start": "2026-11-23T09:00:09+00:00",
        "end": "2026-11-23T09:00:10+00:00",
        "text": "Şöyle anlatayım.",
        "confidence": 0.9,
        "engine": "vosk",
        "language": "tr",
        "mode": "live",
        "redacted": [],
    },
    {
        "speaker": "caller",
        "agent_id": None,
        "start": "2026-11-23T09:00:09.500000+00:00",
        "end": "2026-11-23T09:00:10.500000+00:00",
        "text": "Beni [telefon] numarasından arayın.",
        "confidence": 0.75,
        "engine": "vosk",
        "language": "tr",
        "mode": "live",
        "redacted": ["phone"],
    },
    {
        "speaker": "agent",
        "agent_id": AYSE,
        "start": "2026-11-23T09:00:12+00:00",
        "end": "2026-11-23T09:00:13+00:00",
        "text": "Ekibimiz sizi arayacak, İstanbul'dasınız değil mi?",
        "confidence": None,
        "engine": "whisper",
        "language": "tr",
        "mode": "after_call",
        "redacted": [],
    },
]
RAW = [None, None, "Şöyle anlatayım.", "Beni 0532 123 45 67 numarasından arayın.", None]


def with_raw(shown: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s if raw is None else {**s, "raw_text": raw} for s, raw in zip(shown, RAW, strict=True)]


async def test_without_a_session_every_route_answers_401(client: Client, calls: Calls) -> None:
    for path in (
        f"/api/calls/{calls.mine}/transcript",
        f"/api/calls/{calls.mine}/transcript.txt",
        "/api/calls/unknown/transcript",
        "/api/transcripts/status",
    ):
        status, body = await get_json(client, path)
        assert (status, body["error"]) == (401, "unauthorized"), path
    status, _ = await get_json(
        client, f"/api/calls/{calls.mine}/transcript", {"Authorization": "Bearer nope"}
    )
    assert status == 401


async def test_an_agent_reads_their_own_call_in_order_without_the_raw_text(
    client: Client, calls: Calls
) -> None:
    ayse = await bearer(client, "ayse")
    status, body = await get_json(client, f"/api/calls/{calls.mine}/transcript", ayse)
    assert status == 200
    assert body == {"call_id": calls.mine, "segments": SHOWN}
    assert not any("raw_text" in s for s in body["segments"])
    # What the API shows is what the model shows, for a role without the raw text.
    by_start = sorted(calls.segments, key=lambda s: s.start_at)
    assert body["segments"] == [s.shown(False) for s in by_start]


@pytest.mark.parametrize(
    ("kind", "text"),
    [("readopted", "Hâlâ hattayım."), ("called_back", "Geri arıyorum.")],
)
async def test_every_way_onto_a_call_lets_the_agent_read_it(
    client: Client, calls: Calls, kind: str, text: str
) -> None:
    call_id = getattr(calls, kind)
    status, body = await get_json(client, f"/api/calls/{call_id}/transcript", await bearer(client, "ayse"))
    assert status == 200 and body["call_id"] == call_id
    assert [s["text"] for s in body["segments"]] == [text]


async def test_another_agents_call_and_an_unknown_call_are_the_same_404(client: Client, calls: Calls) -> None:
    ayse = await bearer(client, "ayse")
    for call_id in (calls.mehmets, calls.offered_to_me, "0" * 32, "no-such-call"):
        for form in ("transcript", "transcript.txt"):
            status, body = await get_json(client, f"/api/calls/{call_id}/{form}", ayse)
            assert (status, body) == (404, NOT_FOUND), (call_id, form)
    # Mehmet let Ayşe's call ring: being offered a call is not taking part in it.
    status, body = await get_json(
        client, f"/api/calls/{calls.mine}/transcript", await bearer(client, "mehmet")
    )
    assert (status, body) == (404, NOT_FOUND)
    status, body = await get_json(
        client, f"/api/calls/{calls.mehmets}/transcript", await bearer(client, "mehmet")
    )
    assert status == 200 and [s["text"] for s in body["segments"]] == ["Mehmet Bey'le konuşuyorum."]
    # A signed-in user with no agent id has taken part in nothing.
    status, body = await get_json(client, f"/api/calls/{calls.mine}/transcript", await bearer(client, "ali"))
    assert (status, body) == (404, NOT_FOUND)


async def test_a_supervisor_reads_any_call_but_not_the_raw_text(client: Client, calls: Calls) -> None:
    sema = await bearer(client, "sema")
    status, body = await get_json(client, f"/api/calls/{calls.mine}/transcript", sema)
    assert (status, body) == (200, {"call_id": calls.mine, "segments": SHOWN})
    status, body = await get_json(client, f"/api/calls/{calls.mehmets}/transcript", sema)
    assert status == 200 and body["segments"][0]["text"] == "Mehmet Bey'le konuşuyorum."
    assert "raw_text" not in body["segments"][0]  # kept, but not for supervisors
    status, body = await get_json(client, "/api/calls/no-such-call/transcript", sema)
    assert (status, body) == (404, NOT_FOUND)


async def test_a_role_in_raw_roles_sees_the_raw_text_where_it_was_kept(client: Client, calls: Calls) -> None:
    admin = await bearer(client, "admin")
    status, body = await get_json(client, f"/api/calls/{calls.mine}/transcript", admin)
    assert (status, body) == (200, {"call_id": calls.mine, "segments": with_raw(SHOWN)})
    status, body = await get_json(client, f"/api/calls/{calls.mehmets}/transcript", admin)
    assert status == 200 and body["segments"][0]["raw_text"] == "gizli"
    # The plain-text form is the redacted text, whoever reads it.
    status, _, text = await get_text(client, f"/api/calls/{calls.mine}/transcript.txt", admin)
    assert status == 200 and "0532" not in text and "[telefon]" in text


@pytest.mark.parametrize("raw_roles", [["supervisor"]])
async def test_raw_roles_name_exactly_who_sees_the_raw_text(client: Client, calls: Calls) -> None:
    status, body = await get_json(client, f"/api/calls/{calls.mine}/transcript", await bearer(client, "sema"))
    assert (status, body["segments"]) == (200, with_raw(SHOWN))
    for user in ("admin", "ayse"):  # a higher role is not a listed one
        status, body = await get_json(
            client, f"/api/calls/{calls.mine}/transcript", await bearer(client, user)
        )
        assert (status, body["segments"]) == (200, SHOWN), user


async def test_the_plain_text_form_has_one_line_per_segment(client: Client, calls: Calls) -> None:
    for user in ("ayse", "sema"):
        status, content_type, text = await get_text(
            client, f"/api/calls/{calls.mine}/transcript.txt", await bearer(client, user)
        )
        assert status == 200 and content_type == "text/plain; charset=utf-8"
        assert text == (
            "[09:00:02] Temsilci/Agent 9001: Alo 183, buyurun. Size nasıl yardımcı olabilirim?\n"
            "[09:00:05] Arayan/Caller: Komşumun çocuğu sürekli ağlıyor, çok endişeliyim.\n"
            "[09:00:09] Arayan/Caller: Şöyle anlatayım.\n"
            "[09:00:09] Arayan/Caller: Beni [telefon] numarasından arayın.\n"
            "[09:00:12] Temsilci/Agent 9001: Ekibimiz sizi arayacak, İstanbul'dasınız değil mi?\n"
        ), user
    # The bytes on the wire are UTF-8: Turkish letters arrive intact, not as "?" or Latin-1.
    async with client.get(
        f"/api/calls/{calls.mine}/transcript.txt", headers=await bearer(client, "ayse")
    ) as r:
        raw = await r.read()
        assert r.headers["Cache-Control"] == "no-store"  # what a caller said stays out of caches
    assert "çocuğu sürekli ağlıyor, çok endişeliyim".encode() in raw
    assert "İstanbul'dasınız".encode() in raw


async def test_a_call_with_nothing_said_yet_is_an_empty_transcript(
    client: Client, web_store: Store, clock: Clock
) -> None:
    log = CallLog(web_store, CallClock(wall=clock))
    call, _ = await log.open("chan-quiet")
    await log.record(call.id, CallEventKind.agent_connected, agent=AYSE)
    await log.flush()
    ayse = await bearer(client, "ayse")
    assert await get_json(client, f"/api/calls/{call.id}/transcript", ayse) == (
        200,
        {"call_id": call.id, "segments": []},
    )
    assert await get_text(client, f"/api/calls/{call.id}/transcript.txt", ayse) == (
        200,
        "text/plain; charset=utf-8",
        "",
    )


async def test_the_figures_are_for_supervisors_only(client: Client) -> None:
    status, body = await get_json(client, "/api/transcripts/status", await bearer(client, "ayse"))
    assert (status, body["error"]) == (403, "forbidden")
    for user in ("sema", "admin"):
        status, body = await get_json(client, "/api/transcripts/status", await bearer(client, user))
        assert (status, body) == (200, FIGURES), user
