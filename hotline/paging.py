"""Escalation wired into a running hotline: which call events and spoken words are urgency
signals, how voice pages reach Asterisk and are spoken, and the incident routes.

Signals (see ``escalation.store.Signal``):
* the IVR's emergency key (or a direct emergency line): the call's ``urgent`` timeline entry;
* an urgent call that ends before any agent took it (``abandoned_urgent``);
* the caller's words, live (partials and finals), matched by ``escalation.keywords``: each rule
  opens or adds to the call's incident once;
* an agent's or supervisor's urgent button (``escalation.http``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from agents.notifier import Notice, Notifier
from ari import AriClient
from escalation import store as incidents
from escalation.channels import ChannelKind, Sender
from escalation.config import EscalationConfig, load_escalation
from escalation.errors import EscalationConfigError
from escalation.flow import Escalations
from escalation.http import IncidentRoutes
from escalation.keywords import Match, Matcher, load_keywords
from escalation.messages import EmailSender, SmsSender
from escalation.models import EventKind, Page, Severity
from escalation.store import Signal
from escalation.voice import VoicePager
from escalation.webhook import WebhookSender
from hotline import asterisk
from hotline.calls import CallLog
from hotline.clock import SYSTEM
from hotline.db import Store
from hotline.logging import scrubber
from hotline.models import AGENT_ON_CALL, CallEvent, CallEventKind, CallOutcome
from hotline.secrets import secret
from hotline.settings import Settings
from hotline.web import web_url
from transcripts.bus import TranscriptNotice
from transcripts.models import Speaker

log = structlog.get_logger(__name__)

SILENT = "Arayan konuşamıyor, tuşla acil yardım istedi / the caller cannot speak and asked for help by keypad"
CLOSE_WAIT = 5.0  # seconds stopping waits for signals being written

# Outcomes of an urgent call that never reached a person (not a voice message, not a call back the
# caller asked for, not the dialplan fallback that rings the agents' phones).
CUT_OFF = frozenset({CallOutcome.abandoned, CallOutcome.abandoned_in_ivr, CallOutcome.recovered})
ABANDONED = "Acil arayan görevliye ulaşmadan kapattı / urgent caller hung up before an agent answered"


@dataclass(frozen=True, slots=True)
class IncidentNotice:
    """An incident's change, for the supervisors' streams (the alert to listen in or barge)."""

    data: dict[str, Any]

    def as_json(self) -> Notice:
        return self.data


@dataclass
class Paging:
    escalations: Escalations
    voice: VoicePager
    routes: IncidentRoutes
    calls: CallLog
    store: Store
    config: EscalationConfig
    matcher: Matcher
    senders: dict[ChannelKind, Sender]
    outside: Callable[[aiohttp.ClientSession], dict[ChannelKind, Sender]]  # webhook, SMS, e-mail
    # Duty of care: (call, number, queue, language, reason) -> the call back's id, or None.
    call_back: Callable[[str, str, str, str, str], Awaitable[str | None]] | None = None
    _session: aiohttp.ClientSession | None = None
    _heard: set[tuple[str, str]] = field(default_factory=set)  # (call, rule) already signalled
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _closing: bool = False

    async def start(self, ari: AriClient) -> None:
        self._session = aiohttp.ClientSession()
        self.senders.update(self.outside(self._session))
        ari.on_event(self.voice.handle)
        self.calls.subscribe(self.on_call_event)
        await self.escalations.start()

    async def close(self) -> None:
        self._closing = True
        # Signals being written finish first (an incident half-opened would wait for the next
        # run's sweep); only one that hangs is cancelled. Either way none outlives the store.
        if self._tasks:
            _, late = await asyncio.wait(list(self._tasks), timeout=CLOSE_WAIT)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self.escalations.close()
        await self.voice.hang_up_all()  # their pages are tried again by the next run
        if self._session is not None:
            await self._session.close()

    def heard(self, notice: TranscriptNotice) -> None:
        """A live transcript line: the caller's words are checked against the urgent rules."""
        if notice.speaker != Speaker.caller:
            return
        for match in self.matcher.match(notice.text, notice.language):
            if (notice.call_id, match.rule_id) in self._heard:
                continue
            self._heard.add((notice.call_id, match.rule_id))
            evidence = {
                "rule": match.rule_id,
                "words": list(match.evidence),
                "text": notice.text,
                "final": notice.final,
                "language": notice.language,
                "engine": notice.engine,
            }
            self._spawn(self._said(notice.call_id, match, evidence))

    async def _said(self, call_id: str, match: Match, evidence: dict[str, Any]) -> None:
        call = await self.calls.get(call_id)
        await self.escalations.signal(
            Signal(
                "keyword",
                match.category,
                match.severity,
                call_id=call_id,
                caller_number=call.caller_number if call else "",
                summary=str(evidence["text"])[:300],
                evidence=evidence,
            )
        )

    def on_call_event(self, event: CallEvent) -> None:
        if event.kind == CallEventKind.urgent:
            self._spawn(self._urgent(event))
        elif event.kind == CallEventKind.stasis_start:
            self._spawn(self._repeated(event))
        elif event.kind == CallEventKind.ended:
            self._heard = {heard for heard in self._heard if heard[0] != event.call_id}
            self._spawn(self._ended(event))

    async def _urgent(self, event: CallEvent) -> None:
        call = await self.calls.get(event.call_id)
        reason = str(event.data.get("reason", ""))
        silent = reason == "silent_sos"
        await self.escalations.signal(
            Signal(
                "silent_sos" if silent else "ivr_key",
                "emergency",
                Severity.critical if silent else Severity.high,
                call_id=event.call_id,
                caller_number=call.caller_number if call else "",
                silent=silent,
                summary=SILENT if silent else "",
                evidence={"reason": reason},
            )
        )

    async def _repeated(self, event: CallEvent) -> None:
        """Calls again and again from one number: someone may be trying to reach us in danger."""
        number, signals = str(event.data.get("caller_number") or ""), self.config.signals
        if signals.repeat_calls is None or event.data.get("extension") == "callback":
            return
        since = event.at - timedelta(minutes=signals.repeat_window_minutes)
        previous = await self.calls.previous_calls(number, before=event.call_id)
        earlier = [c for c in previous if since <= c.started_at <= event.at and c.extension != "callback"]
        if len(earlier) + 1 != signals.repeat_calls:  # once, as the count is reached
            return
        await self.escalations.signal(
            Signal(
                "repeat_calls",
                "emergency",
                Severity.medium,
                call_id=event.call_id,
                caller_number=number,
                summary=f"{len(earlier) + 1} arama / calls in {signals.repeat_window_minutes} min",
                evidence={"calls": [c.id for c in earlier], "window_minutes": signals.repeat_window_minutes},
            )
        )

    async def _ended(self, event: CallEvent) -> None:
        call = await self.calls.get(event.call_id)
        if call is None or not call.urgent or call.outcome not in CUT_OFF:
            return
        timeline = await self.calls.events(event.call_id)
        if any(e.kind in AGENT_ON_CALL for e in timeline):
            return
        incident = await self.escalations.signal(
            Signal(
                "abandoned_urgent",
                call.category or "emergency",
                Severity.high,
                call_id=call.id,
                caller_number=call.caller_number,
                summary=ABANDONED,
                evidence={"outcome": call.outcome},
            )
        )
        if self.call_back is not None and self.config.signals.callback_abandoned:
            queue = call.queue or "emergency"
            back = await self.call_back(call.id, call.caller_number, queue, call.language, "duty_of_care")
            now = SYSTEM.utcnow()
            await incidents.record(
                self.store, incident.id, EventKind.callback, now, callback=back, queue=queue
            )

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        if self._closing:  # stopping: what happens now is left to the calls' own records
            work.close()
            return
        task = asyncio.create_task(self._guarded(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception:  # a signal that failed is logged loudly; the call itself goes on
            log.exception("urgency_signal_failed")


def build_paging(
    settings: Settings,
    ari: AriClient,
    calls: CallLog,
    store: Store,
    notices: Notifier,
    instance: asterisk.Instance,
    province: Callable[[str], str | None] | None = None,
) -> Paging:
    config = load_escalation(Path(settings.escalation.file))

    async def speak(text: str, language: str) -> str:
        name = "page-" + hashlib.sha256(f"{language}:{text}".encode()).hexdigest()[:20]
        built = await asyncio.to_thread(
            asterisk.build_instance_sounds, settings, instance, {name: {language: text}}
        )
        return built[name, language]

    escalations: Escalations

    async def outcome(page_id: str, what: str) -> None:
        await escalations.page_outcome(page_id, what)

    voice = VoicePager(
        ari,
        speak,
        outcome,
        accept_digit=config.voice.accept_digit,
        pass_digit=config.voice.pass_digit,
        plays=config.voice.plays,
        ring_timeout=config.voice.ring_timeout,
    )
    senders: dict[ChannelKind, Sender] = {ChannelKind.voice: voice}

    def outside(session: aiohttp.ClientSession) -> dict[ChannelKind, Sender]:
        return outside_senders(settings, config, session)

    base = web_url(settings).rstrip("/")

    def links(page: Page) -> dict[str, str]:
        return {"incident": f"{base}/api/incidents/{page.incident_id}", "ack": f"{base}/ack#{page.token}"}

    escalations = Escalations(
        store,
        config,
        senders,
        address=lambda target, channel: address(config, target, channel),
        links=links,
        province=province or (lambda _n: None),
        publish=lambda data: notices.publish(IncidentNotice(data)),
    )
    matcher = load_keywords(Path(settings.escalation.keywords))
    routes = IncidentRoutes(store, escalations, calls)
    return Paging(escalations, voice, routes, calls, store, config, matcher, senders, outside)


def outside_senders(
    settings: Settings, config: EscalationConfig, session: aiohttp.ClientSession
) -> dict[ChannelKind, Sender]:
    """The webhook, SMS and e-mail senders the configuration needs, their secrets read once."""
    found: dict[ChannelKind, Sender] = {}
    hooks = {name: t.webhook for name, t in config.targets.items() if t.webhook is not None}
    if hooks:
        keys = {
            hook.url: _read(hook.secret_file) if hook.secret_file else secret(settings, f"webhook-{name}")
            for name, hook in hooks.items()
        }
        for key in keys.values():
            scrubber.add(key)
        found[ChannelKind.webhook] = WebhookSender(session, lambda m: keys[m.address].encode())
    sms = config.gateways.sms
    if sms is not None:
        token = _read(sms.token_file) if sms.token_file else ""
        if token:
            scrubber.add(token)
        found[ChannelKind.sms] = SmsSender(
            session,
            sms.url,
            token,
            to_field=sms.to_field,
            text_field=sms.text_field,
            reference_field=sms.reference_field,
        )
    mail = config.gateways.email
    if mail is not None:
        password = _read(mail.password_file) if mail.password_file else None
        if password:
            scrubber.add(password)
        found[ChannelKind.email] = EmailSender(
            mail.host,
            mail.port,
            sender=mail.sender,
            starttls=mail.starttls,
            username=mail.username,
            password=password,
        )
    return found


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise EscalationConfigError(f"{path}: cannot read the secret: {exc.strerror}") from None


def address(config: EscalationConfig, target: str, channel: ChannelKind) -> str:
    found = config.targets[target]
    match channel:
        case ChannelKind.voice:
            assert found.voice is not None
            return found.voice.dial or f"PJSIP/desk-{target}"
        case ChannelKind.webhook:
            assert found.webhook is not None
            return found.webhook.url
        case ChannelKind.sms:
            return found.sms or ""
        case ChannelKind.email:
            return found.email or ""
