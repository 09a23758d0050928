"""The menu state machine of one call, free of I/O.

It takes what happened (a key, the prompt ending, the wait for a key running out) and answers
with what to do (play prompts, stop the prompt, wait for a key, or finish at a queue). The ARI
flow carries those actions out, so every rule here is tested without Asterisk or a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ivr.config import IvrConfig, Target


@dataclass(frozen=True, slots=True)
class Play:
    prompts: tuple[tuple[str, str], ...]  # (prompt name, language), heard in this order


@dataclass(frozen=True, slots=True)
class StopPrompt:
    """A key was pressed while a prompt was playing (barge-in)."""


@dataclass(frozen=True, slots=True)
class WaitForKey:
    seconds: float


@dataclass(frozen=True, slots=True)
class Finished:
    queue: str
    language: str
    urgent: bool
    reason: str  # choice | emergency | no_input | invalid | open_ticket
    agent: str | None = None  # put through to this agent first (the one who handled the open case)


@dataclass(frozen=True, slots=True)
class AgentOffer:
    """A repeat caller's open case whose agent is free: whom to offer and where they take calls."""

    agent: str
    queue: str
    language: str  # the case's language: the caller spoke it with that agent


Action = Play | StopPrompt | WaitForKey | Finished


FREE_REPEATS = 3  # repeat-key presses per menu before each one spends a retry
OFFER = "open_ticket_offer"  # the offer's name in the call's path (it is not a menu of the tree)


@dataclass(slots=True)
class MenuSession:
    config: IvrConfig
    language: str
    languages: tuple[str, ...]  # every language, for menus played in all of them
    node: str = ""
    retries_left: int = 0
    repeats: int = 0  # free repeats (the repeat key) used in this menu
    playing: bool = False
    result: Finished | None = None
    offer: AgentOffer | None = None  # made and not yet answered: keys answer it, not a menu
    history: list[str] = field(default_factory=list)  # menus to go back to with the back key
    path: list[dict[str, str | float]] = field(default_factory=list)  # what happened, for the call record
    clock: Callable[[], float] = lambda: 0.0  # seconds since the call was answered, for the path

    def start(self, ticket: str = "", offer: AgentOffer | None = None) -> list[Action]:
        """The welcome and the first menu; ``ticket``: the caller's open case, mentioned after the
        welcome (its sequence number read digit by digit) when the menu has an open_ticket prompt;
        ``offer``: its agent is free, so the caller is offered them before the menus."""
        menu = self.config.menu
        before = [(menu.welcome, self.language)] if menu.welcome else []
        if ticket and menu.open_ticket:
            digits = ticket.rsplit("-", 1)[-1].lstrip("0") or "0"
            before += [(menu.open_ticket, self.language), *((f"digit_{d}", self.language) for d in digits)]
            if offer is not None and menu.open_ticket_offer:
                self.offer, self.playing = offer, True
                return [Play((*before, (menu.open_ticket_offer, self.language)))]
        return self._enter(menu.start, before=before)

    def prompt_finished(self) -> list[Action]:
        if self.result is not None or not self.playing:
            return []
        self.playing = False
        if self.offer is not None:
            return [WaitForKey(self.config.menu.open_ticket_offer_timeout)]
        node = self.config.nodes[self.node]
        return [WaitForKey(node.timeout or self.config.menu.timeout)]

    def key(self, digit: str) -> list[Action]:
        if self.result is not None:
            return []
        menu = self.config.menu
        barge: list[Action] = [StopPrompt()] if self.playing else []
        self.playing = False
        self.path.append({"menu": self.node or OFFER, "key": digit, "t": self._now()})
        if self.offer is not None:
            return barge + self._answer_offer(digit)
        node = self.config.nodes[self.node]
        if digit == menu.emergency_digit:
            return barge + self._finish(menu.emergency_queue, urgent=True, reason="emergency")
        if digit in node.options:
            return barge + self._follow(node.options[digit], "choice")
        if digit == menu.repeat_digit:
            self.repeats += 1
            if self.repeats > FREE_REPEATS:  # past that, a repeat spends a retry: it cannot go on forever
                return barge + self._retry(None, "repeat")
            return barge + self._prompt(self.node)
        if digit == menu.back_digit:
            previous = self.history.pop() if self.history else self.node
            return barge + self._enter(previous, remember=False)
        return barge + self._retry(menu.invalid, "invalid")

    def timed_out(self) -> list[Action]:
        if self.result is not None or self.playing:
            return []
        self.path.append({"menu": self.node or OFFER, "key": "", "t": self._now()})
        if self.offer is not None:  # no answer is no: the menus, as for anyone
            self.offer = None
            return self._enter(self.config.menu.start)
        return self._retry(self.config.menu.no_input, "no_input")

    # -- transitions -------------------------------------------------------------------------

    def _answer_offer(self, digit: str) -> list[Action]:
        offer, self.offer = self.offer, None
        assert offer is not None
        menu = self.config.menu
        if digit == menu.emergency_digit:
            return self._finish(menu.emergency_queue, urgent=True, reason="emergency")
        if digit == menu.open_ticket_offer_digit:
            self.language = offer.language or self.language
            return self._finish(offer.queue, urgent=False, reason="open_ticket", agent=offer.agent)
        return self._enter(menu.start)  # any other key declines: the menus, as for anyone

    def _retry(self, notice: str | None, reason: str) -> list[Action]:
        node = self.config.nodes[self.node]
        if self.retries_left <= 0:
            fallback = node.on_fail or Target(queue=self.config.menu.operator_queue)
            return self._follow(fallback, reason)
        self.retries_left -= 1
        return self._prompt(self.node, before=[(notice, self.language)] if notice else [])

    def _follow(self, target: Target, reason: str) -> list[Action]:
        if target.language:
            self.language = target.language
        if target.emergency:
            return self._finish(self.config.menu.emergency_queue, urgent=True, reason="emergency")
        if target.queue is not None:
            return self._finish(target.queue, urgent=False, reason=reason)
        assert target.goto is not None  # a Target has exactly one destination
        return self._enter(target.goto)

    def _enter(
        self, name: str, before: list[tuple[str, str]] | None = None, remember: bool = True
    ) -> list[Action]:
        if remember and self.node and self.node != name:
            self.history.append(self.node)
        self.node = name
        node = self.config.nodes[name]
        self.retries_left = self.config.menu.retries if node.retries is None else node.retries
        self.repeats = 0
        return self._prompt(name, before or [])

    def _prompt(self, name: str, before: list[tuple[str, str]] | None = None) -> list[Action]:
        node = self.config.nodes[name]
        if node.all_languages:
            texts = self.config.prompts[node.prompt]
            prompts = [(node.prompt, lang) for lang in self.languages if lang in texts]
        else:
            prompts = [(node.prompt, self.language)]
        self.playing = True
        return [Play(tuple([*(before or []), *prompts]))]

    def _finish(self, queue: str, urgent: bool, reason: str, agent: str | None = None) -> list[Action]:
        self.result = Finished(queue=queue, language=self.language, urgent=urgent, reason=reason, agent=agent)
        self.path.append({"menu": self.node or OFFER, "queue": queue, "reason": reason, "t": self._now()})
        return [self.result]

    def _now(self) -> float:
        return round(self.clock(), 3)
