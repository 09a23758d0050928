"""One guard for every step that acts on a live call, shared by the IVR and the queues.

A step runs inside ``guard.step(...)``. If it raises, the guard

1. undoes what the step had half done (the undo actions it registered, last first, each on its own
   so that one failing undo does not skip the others);
2. puts the caller back where they were, through the step's ``recover`` (e.g. back in the holding
   bridge, their place in the queue kept);
3. failing that (no ``recover``, or it raised too), hands the caller to the dialplan fallback,
   which rings every agent phone directly;
4. records why on the call's timeline and logs it.

The exception does not propagate: the caller has been taken care of, and the event loop carries on
with the next event. No caller is ever left in silence by our own error.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from ari import AriClient, AriError, NotFound
from hotline.calls import CallLog
from hotline.models import CallEventKind

log = structlog.get_logger(__name__)

Action = Callable[[], Awaitable[None] | None]


@dataclass(slots=True)
class Undo:
    """What a step has done so far that must be taken back if it fails."""

    actions: list[tuple[str, Action]] = field(default_factory=list)

    def add(self, what: str, action: Action) -> None:
        self.actions.append((what, action))

    async def run(self) -> None:
        while self.actions:
            what, action = self.actions.pop()
            try:
                result = action()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:  # keep undoing the rest
                log.warning("undo_failed", undo=what, error=f"{exc.__class__.__name__}: {exc}")


class Fallback:
    """Sends a channel to the dialplan's fallback label: a person answers even without us."""

    def __init__(self, ari: AriClient, *, context: str, extension: str, label: str) -> None:
        self._ari = ari
        self.context, self.extension, self.label = context, extension, label

    async def __call__(self, channel_id: str) -> bool:
        """True when Asterisk took the channel (False: it was gone, or Asterisk refused)."""
        try:
            await self._ari.channels.continue_in_dialplan(
                channel_id, context=self.context, extension=self.extension, label=self.label
            )
        except NotFound:
            log.info("continue_skipped", channel_id=channel_id, reason="the caller has hung up")
            return False
        except AriError as exc:
            log.error("continue_failed", channel_id=channel_id, label=self.label, error=str(exc))
            return False
        return True


class Guard:
    def __init__(self, calls: CallLog, fallback: Fallback) -> None:
        self._calls = calls
        self.fallback = fallback

    @contextlib.asynccontextmanager
    async def step(
        self,
        name: str,
        call_id: str | Callable[[], str | None] | None,
        channel_id: str | None,
        *,
        recover: Callable[[], Awaitable[None]] | None = None,
        fallback: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[Undo]:
        """Run the body as step ``name`` of ``call_id`` (on the caller's ``channel_id``).

        ``call_id`` may be a function, asked only on failure (a step may be what creates the call).
        ``fallback`` replaces the plain hand-over to the dialplan when the owner must also forget
        the caller (it is expected to hand them over itself)."""
        undo = Undo()
        try:
            yield undo
        except Exception as exc:
            if callable(call_id):
                call_id = call_id()
            error = f"{exc.__class__.__name__}: {exc}"
            log.exception("call_step_failed", step=name, call_id=call_id, channel_id=channel_id)
            await undo.run()
            await self._note(call_id, CallEventKind.step_failed, step=name, error=error)
            if recover is not None:
                try:
                    await recover()
                except Exception as again:
                    log.exception("call_recovery_failed", step=name, call_id=call_id)
                    await self._note(call_id, CallEventKind.recovery_failed, step=name, error=str(again))
                else:
                    await self._note(call_id, CallEventKind.step_recovered, step=name)
                    return
            if fallback is not None:
                await self._last_resort(name, call_id, fallback)
            elif channel_id:
                await self._note(call_id, CallEventKind.handed_to_fallback, step=name)
                await self.fallback(channel_id)

    async def _last_resort(
        self, name: str, call_id: str | None, fallback: Callable[[], Awaitable[None]]
    ) -> None:
        try:
            await fallback()
        except Exception:  # nothing more we can do from here; Asterisk still holds the caller
            log.exception("call_fallback_failed", step=name, call_id=call_id)

    async def _note(self, call_id: str | None, kind: CallEventKind, **data: Any) -> None:
        if call_id is None:
            return
        try:
            await self._calls.record(call_id, kind, **data)
        except Exception:  # the store is down: the log line above is what remains
            log.exception("call_note_failed", kind=kind, call_id=call_id)
