"""Application wiring and lifecycle: settings → logging → store → ARI → call flow → web."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web

from agents import http as agents_http
from agents.service import Presence, Router
from agents.stasis import QueueFlow, seats_from_settings
from ari import AriClient, AriError
from ari import events as ev
from hotline import asterisk
from hotline.auth import bootstrap_users
from hotline.callconfig import load_call_config
from hotline.callflow import Fallback, Guard
from hotline.calls import CallLog
from hotline.db import Store
from hotline.logging import configure_logging, scrubber
from hotline.paging import Paging, build_paging
from hotline.settings import Settings
from hotline.speech import Speech, build_speech
from hotline.web import public, start_web
from ivr.flow import FlowConfig, Handoff, IvrFlow, OpenCase, OpenTicket
from ivr.service import AgentOffer
from tickets import store as tickets_store
from tickets.config import load_tickets
from tickets.deadlines import Deadlines
from tickets.flow import TicketFlow
from tickets.http import TicketRoutes
from transcripts.service import caller_said
from transcripts.speech_models import plan as speech_plan

log = structlog.get_logger(__name__)

# Event types Asterisk sends for every call that none of our handlers reads.
UNREAD_EVENTS = ("ChannelVarset", "ChannelConnectedLine", "ChannelCallerId", "ChannelDialplan")


@dataclass
class App:
    """Everything one running hotline owns; built by ``create_app``, torn down by ``close``."""

    settings: Settings
    store: Store
    ari: AriClient
    calls: CallLog
    flow: IvrFlow
    queues: QueueFlow
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    web_runner: web.AppRunner | None = None
    speech: Speech | None = None
    tickets: TicketFlow | None = None
    ticket_routes: TicketRoutes | None = None
    deadlines: Deadlines | None = None
    paging: Paging | None = None

    async def start(self, serve_web: bool = True) -> None:
        await self.store.check_schema()
        if self.tickets is not None:
            self.calls.subscribe(self.tickets.on_call_event)
            await self.tickets.sweep()  # calls that ended while no process made their ticket
        if self.deadlines is not None:
            self.deadlines.start()
        await self.ari.open()
        info = await self.ari.asterisk.info()
        log.info("asterisk_connected", version=info.version, ari=self.settings.ari.url)
        await self.queues.start()
        self.ari.on_event(self._filter_events)
        self.ari.on_event(self.flow.handle)
        self.ari.on_event(self.queues.handle)
        if self.paging is not None:
            await self.paging.start(self.ari)  # pages a previous run left are resumed now
        if self.settings.speech.enabled:
            self.speech = await build_speech(self.settings, self.ari, self.calls, self.store)
            await self.speech.start(self.ari, self.calls, self.queues.notices)
            log.info("transcripts_ready", engines=self.speech.plan.engines)
            if self.paging is not None:
                self.speech.bus.listen(self.paging.heard)  # urgent words open incidents
        self.tasks.append(asyncio.create_task(self.ari.run(), name="ari-supervisor"))
        await self.ari.wait_connected(timeout=self.settings.ari.request_timeout)
        if serve_web:
            created = await bootstrap_users(self.settings, self.store)
            if created:
                log.info(
                    "web_users_created", users=created, secrets_dir=str(self.settings.state_path / "secrets")
                )
            installers = [self.health_routes, agents_http.routes(self.queues, self.store)]
            if self.speech is not None:
                installers.append(self.speech.routes.install)
            if self.ticket_routes is not None:
                installers.append(self.ticket_routes.install)
            if self.paging is not None:
                installers.append(self.paging.routes.install)
            self.web_runner = await start_web(self.settings, self.store, installers)

    def health_routes(self, webapp: web.Application) -> None:
        """``/healthz``, open to monitoring without a session."""

        @public
        async def health(_request: web.Request) -> web.Response:
            return web.json_response(
                {"ari_connected": self.ari.connected is not None, "live_calls": self.flow.live_calls}
            )

        webapp.router.add_get("/healthz", health)

    async def _filter_events(self, event: ev.Event) -> None:
        """On every (re)connect, ask Asterisk not to send what no handler reads: most of a call's
        events are variable and caller-id updates, and decoding them costs CPU per call."""
        if isinstance(event, ev.Connected):
            try:
                await self.ari.applications.event_filter(disallowed=UNREAD_EVENTS)
            except AriError as exc:  # an older Asterisk without filters: only slower
                log.warning("event_filter_refused", error=str(exc))

    @property
    def live_calls(self) -> int:
        return self.flow.live_calls + self.queues.live_calls

    async def close(self) -> None:
        log.info("hotline_stopping", live_calls=self.live_calls, on_stop=self.settings.hotline.on_stop)
        if self.settings.hotline.on_stop == "fallback" and self.ari.connected is not None:
            # Callers in the menus or waiting in a queue go to the agents' phones directly;
            # callers already talking to an agent stay bridged in Asterisk.
            handed = await self.flow.hand_over_all() + await self.queues.hand_over_waiting(self.flow.fallback)
            if handed:
                log.warning("calls_handed_to_fallback", calls=handed)
        # Otherwise live calls stay in Asterisk's Stasis app and the next start re-adopts them.
        self.flow.close()
        await self.queues.close(tidy=self.ari.connected is not None)
        if self.web_runner is not None:
            await self.web_runner.cleanup()
        if self.speech is not None:
            await self.speech.close()  # the calls go on; what was said so far is stored
        if self.tickets is not None:
            await self.tickets.close()
        if self.deadlines is not None:
            await self.deadlines.close()
        if self.paging is not None:
            await self.paging.close()  # unsent pages stay in the outbox for the next run
        await self.ari.close()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.store.close()


def create_app(settings: Settings) -> App:
    """Build the application; reads and validates the IVR and builds its prompts (fails fast)."""
    queues, ivr = load_call_config(settings)
    if settings.speech.enabled:
        speech_plan(settings)  # a missing model stops start-up here, naming the key and the path
    instance = asterisk.load_instance(settings) or asterisk.plan_instance(settings)
    sounds = asterisk.build_instance_prompts(settings, instance, ivr)
    password = asterisk.ari_password(settings)
    scrubber.add(password)
    store = Store(settings.database_url, echo=settings.database.echo)
    ari = AriClient(
        base_url=settings.ari.url,
        username=settings.ari.user,
        password=password,
        app=settings.ari.app,
        request_timeout=settings.ari.request_timeout,
    )
    calls = CallLog(store)
    languages = tuple(
        dict.fromkeys([*settings.hotline.languages, *sorted(ivr.languages(settings.hotline.languages[0]))])
    )
    announcements = (
        asterisk.build_instance_sounds(settings, instance, queues.announcements.prompts())
        if any(q.announce_period or q.callback for q in queues.queues.values())
        else {}
    )
    # "We have a problem", then every agent phone rings: see config/asterisk/extensions.conf.
    fallback = Fallback(ari, context="from-caller", extension=settings.asterisk.extension, label="fallback")
    guard = Guard(calls, fallback)
    queue_flow = QueueFlow(
        ari, calls, store, queues, seats_from_settings(settings.agents), guard, sounds=announcements
    )

    async def handoff(h: Handoff) -> None:
        caller = (h.caller_name, h.caller_number)
        await queue_flow.enqueue(h.call_id, h.channel_id, h.queue, h.language, h.urgent, caller, h.agent)

    flow_config = FlowConfig(extension=settings.asterisk.extension, languages=languages)
    flow = IvrFlow(
        ari,
        calls,
        ivr,
        queues,
        sounds,
        flow_config,
        handoff,
        guard,
        open_ticket=open_cases(store, queue_flow.router, languages[0]),
    )
    cases, zone = load_tickets(Path(settings.tickets.file)), ZoneInfo(settings.hotline.timezone)
    tickets = TicketFlow(
        store, calls, cases, queues.calendar, zone, said=lambda call_id: caller_said(store, call_id)
    )
    routes = TicketRoutes(store, cases, queues.calendar, zone)
    deadlines = Deadlines(store, queue_flow.notices.publish)  # to the supervisors' streams
    paging = (
        build_paging(settings, ari, calls, store, queue_flow.notices, instance, province=cases.province)
        if settings.escalation.enabled
        else None
    )
    if paging is not None:
        paging.call_back = queue_flow.call_back  # duty of care for urgent callers cut off
    return App(
        settings,
        store,
        ari,
        calls,
        flow,
        queue_flow,
        tickets=tickets,
        ticket_routes=routes,
        deadlines=deadlines,
        paging=paging,
    )


def open_cases(store: Store, router: Router, language: str) -> OpenTicket:
    """The IVR's look-up of a caller's open case; its agent is offered only while free right now."""

    async def lookup(number: str) -> OpenCase | None:
        found = await tickets_store.open_case(store, number)
        if found is None:
            return None
        ticket, queue = found
        agent = router.agents.get(ticket.assigned_agent or "")
        if agent is None or agent.presence is not Presence.available or queue is None:
            return OpenCase(ticket.number)
        return OpenCase(ticket.number, AgentOffer(agent.id, queue, ticket.language or language))

    return lookup


async def run_forever(settings: Settings) -> int:
    """``hotline run``: serve until SIGTERM/SIGINT, then shut down cleanly."""
    configure_logging(settings.logging.level, settings.logging.format)
    app = create_app(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start()
        # Long-lived start-up objects (config, models, prompts) need no more garbage collection
        # passes: keeps full collections short while events queue up under load.
        gc.freeze()
        log.info("hotline_ready", extension=settings.asterisk.extension, app=settings.ari.app)
        supervisor = app.tasks[0]
        await asyncio.wait(
            [asyncio.create_task(stop.wait()), supervisor], return_when=asyncio.FIRST_COMPLETED
        )
        if supervisor.done() and not stop.is_set():
            log.critical("ari_supervisor_stopped", reason="application replaced or fatal error")
            return 1
    finally:
        await app.close()
    log.info("hotline_stopped")
    return 0
