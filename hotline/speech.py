"""Wiring the transcripts: engines loaded once, the live flow on the call log and the ARI events,
live lines to the agent's and supervisors' streams, and the REST routes."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from agents.notifier import Notifier
from ari import AriClient
from hotline.calls import CallLog
from hotline.db import Store
from hotline.settings import Settings
from transcripts.bus import Bus, TranscriptNotice
from transcripts.engine import Engine
from transcripts.http import TranscriptRoutes
from transcripts.media import PortPool
from transcripts.recordings import Recordings
from transcripts.redaction import Redactor
from transcripts.service import Capacity, Transcriber, status
from transcripts.speech_models import SpeechPlan, load_engines, plan
from transcripts.stasis import SpeechContext, TranscriptFlow
from transcripts.taps import Taps


@dataclass
class Speech:
    """The transcripts of a running hotline (absent when ``speech.enabled`` is false)."""

    flow: TranscriptFlow
    bus: Bus
    recordings: Recordings
    routes: TranscriptRoutes
    pool: ThreadPoolExecutor
    plan: SpeechPlan

    async def start(self, ari: AriClient, calls: CallLog, notices: Notifier) -> None:
        calls.subscribe(self.flow.on_call_event)
        ari.on_event(self.flow.handle)

        def to_desks(notice: TranscriptNotice) -> None:
            # Supervisors see every line; the agent sees the lines of their own call.
            notices.publish(notice, agent_id=notice.agent_id or None)

        self.bus.listen(to_desks)
        self.recordings.start()

    async def close(self) -> None:
        await self.flow.close()
        await self.recordings.close()
        self.pool.shutdown(wait=False, cancel_futures=True)


async def build_speech(settings: Settings, ari: AriClient, calls: CallLog, store: Store) -> Speech:
    """Load the engines (off the event loop: it takes seconds) and build the flow."""
    speech = settings.speech
    chosen = plan(settings)
    engines: dict[str, Engine] = await asyncio.to_thread(load_engines, chosen, speech.threads)
    pool = ThreadPoolExecutor(max_workers=speech.threads, thread_name_prefix="speech")
    bus = Bus()
    transcriber = Transcriber(store, Redactor(speech.redact), bus, keep_raw=speech.keep_raw)
    default = settings.hotline.languages[0]

    def choose(language: str) -> str:
        return chosen.engines.get(language) or chosen.engines[default]

    def after_call(language: str) -> str:
        # Whisper where it is loaded: it reads whole recordings best and knows every language.
        return "whisper" if "whisper" in engines else choose(language)

    recordings = Recordings(
        ari,
        store,
        calls,
        transcriber,
        engines=engines,
        after_call_engine=after_call,
        pool=pool,
        retention_days=speech.recording.retention_days,
        keep=speech.recording.mode != "off",
    )
    limits: dict[str, int] = {str(name): n for name, n in speech.max_streams.items()}
    capacity = Capacity({name: limits.get(name, 0) for name in engines})
    ctx = SpeechContext(
        ari=ari,
        calls=calls,
        taps=Taps(ari, PortPool(speech.rtp_host, speech.rtp_start, speech.rtp_end)),
        transcriber=transcriber,
        recordings=recordings,
        engines=engines,
        choose=choose,
        capacity=capacity,
        pool=pool,
        default_language=default,
        record_mode=speech.recording.mode,
    )
    flow = TranscriptFlow(ctx)

    def figures() -> dict[str, Any]:
        return status(capacity, transcriber.figures, {"engines": chosen.engines})

    routes = TranscriptRoutes(store, calls, speech.raw_roles, figures, ZoneInfo(settings.hotline.timezone))
    return Speech(flow, bus, recordings, routes, pool, chosen)
