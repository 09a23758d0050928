"""The transcript flow's test harness: the fake ARI server, a SQLite store, a scripted engine,
and a sender that plays Asterisk's part on the RTP side (slin16, big-endian, 20 ms packets)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ari import AriClient
from ari.testing import FakeAri
from hotline import db
from hotline.calls import CallLog
from hotline.models import CallEvent
from tests.unit.transcripts.test_media import free_ports
from transcripts.bus import Bus, TranscriptNotice
from transcripts.engine import FRAME_BYTES, Result
from transcripts.media import PortPool, RtpReceiver
from transcripts.recordings import Recordings
from transcripts.redaction import Redactor
from transcripts.rtp import RtpPacket
from transcripts.service import Capacity, Transcriber
from transcripts.stasis import SpeechContext, TranscriptFlow
from transcripts.taps import PREFIX, Taps

SECOND = FRAME_BYTES * 50  # one second of 16 kHz s16 audio


class ScriptedRecognizer:
    """A partial for every fed slice; a final for every second of audio: "<n>. beni 0532 123 45 67
    numarasından arayın" (a phone number to redact)."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.fed = 0
        self.said = 0

    def feed(self, pcm: bytes) -> list[Result]:
        self.fed += len(pcm)
        t = self.fed / (FRAME_BYTES * 50)
        out = [Result(f"söz {self.said + 1}", False, float(self.said), t, None, self.language)]
        while self.fed >= (self.said + 1) * SECOND:
            self.said += 1
            text = f"{self.said}. beni 0532 123 45 67 numarasından arayın"
            out.append(Result(text, True, float(self.said - 1), float(self.said), 0.9, self.language))
        return out

    def finish(self) -> list[Result]:
        if self.fed > self.said * SECOND:
            t = self.fed / SECOND
            return [Result("son söz", True, float(self.said), t, 0.8, self.language)]
        return []


@dataclass
class ScriptedEngine:
    name: str = "vosk"
    released: int = 0
    transcribed: list[bytes] = field(default_factory=list)

    def languages(self) -> frozenset[str]:
        return frozenset({"tr", "en"})

    def recognizer(self, language: str) -> ScriptedRecognizer:
        return ScriptedRecognizer(language)

    def release(self, recognizer: object) -> None:
        self.released += 1

    def transcribe(self, pcm: bytes, language: str) -> list[Result]:
        self.transcribed.append(pcm)
        return [Result("kaydedilen söz", True, 0.5, 1.5, 0.7, language)]


@dataclass
class World:
    fake: FakeAri
    client: AriClient
    store: db.Store
    calls: CallLog
    flow: TranscriptFlow
    ctx: SpeechContext
    engine: ScriptedEngine
    notices: list[TranscriptNotice]
    timeline: list[CallEvent]
    changed: asyncio.Event

    async def until(self, check: Callable[[], object], timeout: float = 5) -> None:
        """Wait (on timeline or transcript changes, never a fixed sleep) until ``check()`` holds."""
        async with asyncio.timeout(timeout):
            while not check():
                self.changed.clear()
                await self.changed.wait()

    async def kind(self, kind: str, count: int = 1) -> CallEvent:
        await self.until(lambda: sum(e.kind == kind for e in self.timeline) >= count)
        return [e for e in self.timeline if e.kind == kind][count - 1]

    async def caller(self, number: str = "05321234567") -> tuple[str, str]:
        """A caller the IVR takes: the call opened (its StasisStart entry); (call id, channel id)."""
        channel = self.fake.make_channel(caller=number)
        call, _ = await self.calls.open(channel["id"], caller_number=number)
        return call.id, channel["id"]

    def ours(self) -> tuple[list[str], list[str]]:
        """Channels and bridges a tap made that the fake Asterisk still has."""
        return (
            [c for c in self.fake.channels if c.startswith(PREFIX)],
            [b for b in self.fake.bridges if b.startswith(PREFIX)],
        )


async def speak(receiver: RtpReceiver, seconds: float, ssrc: int = 7) -> None:
    """Send ``seconds`` of slin16 RTP to ``receiver`` as Asterisk's externalMedia would: in
    batches the receiver takes in before the next (a burst would overflow the socket's buffer
    where Asterisk paces packets at 50 a second)."""
    start = receiver.stats.received
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        async with asyncio.timeout(10):
            for seq in range(int(seconds * 50)):
                payload = struct.pack(">320h", *([1000] * 320))
                packet = RtpPacket(
                    payload_type=118, sequence=seq, timestamp=seq * 320, ssrc=ssrc, payload=payload
                )
                sock.sendto(packet.serialize(), receiver.address)
                # The receiver signals nothing per packet: yield to the loop until it has read them.
                while receiver.stats.received - start < seq + 1 - 10:  # noqa: ASYNC110
                    await asyncio.sleep(0)
            while receiver.stats.received - start < int(seconds * 50):  # noqa: ASYNC110
                await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def world(
    store: db.Store,
    limits: dict[str, int] | None = None,
    record_mode: str = "off",
    fake: FakeAri | None = None,
) -> AsyncIterator[World]:
    """One hotline process's transcript flow; ``fake``: on that Asterisk (a process after a crash)."""
    async with contextlib.AsyncExitStack() as stack:
        if fake is None:
            fake = await stack.enter_async_context(FakeAri(username="hotline", password="pw"))
        client = AriClient(fake.base_url, "hotline", "pw", "hotline", backoff_base=0.01, backoff_max=0.05)
        calls = CallLog(store)
        timeline: list[CallEvent] = []
        notices: list[TranscriptNotice] = []
        changed = asyncio.Event()

        def seen(event: CallEvent) -> None:
            timeline.append(event)
            changed.set()

        def heard(notice: TranscriptNotice) -> None:
            notices.append(notice)
            changed.set()

        bus = Bus()
        bus.listen(heard)
        engine = ScriptedEngine()
        whisper = ScriptedEngine("whisper")
        pool = ThreadPoolExecutor(max_workers=2)
        transcriber = Transcriber(store, Redactor(["tckn", "phone", "iban", "email"]), bus, keep_raw=True)
        engines = {"vosk": engine, "whisper": whisper}
        recordings = Recordings(
            client,
            store,
            calls,
            transcriber,
            engines=engines,  # type: ignore[dict-item]
            after_call_engine=lambda _language: "vosk",
            pool=pool,
            retention_days=30,
            keep=record_mode != "off",
        )
        start = free_ports(8)
        ctx = SpeechContext(
            ari=client,
            calls=calls,
            taps=Taps(client, PortPool("127.0.0.1", start, start + 7)),
            transcriber=transcriber,
            recordings=recordings,
            engines=engines,  # type: ignore[arg-type]
            choose=lambda language: "whisper" if language == "en" else "vosk",  # as a plan would
            capacity=Capacity(limits or {"vosk": 4, "whisper": 4}),
            pool=pool,
            default_language="tr",
            record_mode=record_mode,
        )
        flow = TranscriptFlow(ctx)
        calls.subscribe(seen)
        calls.subscribe(flow.on_call_event)
        async with client:
            client.on_event(flow.handle)
            runner = asyncio.create_task(client.run())
            await client.wait_connected(5)
            recordings.start()
            try:
                yield World(fake, client, store, calls, flow, ctx, engine, notices, timeline, changed)
            finally:
                await flow.close()
                await recordings.close()
                pool.shutdown()
        await runner
