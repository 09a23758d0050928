"""The IVR as configuration (``config/ivr.toml``): prompts and menus.

The tree is validated as a whole at start-up, against the queues that exist: unknown targets,
unreachable menus, digits that clash with the emergency/repeat/back keys, and prompts missing a
language a caller can choose all stop start-up with the file, the key and the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from hotline.settings import SettingsError, describe_error, read_toml

DIGITS = set("0123456789*#")
Digit = Annotated[str, Field(pattern=r"^[0-9*#]$")]
Seconds = Annotated[float, Field(gt=0, le=60)]


class IvrConfigError(SettingsError):
    """The IVR configuration is wrong; ``str()`` names file, key and reason."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Target(_Model):
    """Where a key (or running out of retries) takes the caller: another menu, a queue, or emergency."""

    goto: str | None = None
    queue: str | None = None
    emergency: bool = False
    language: str | None = None  # switch the call's language on the way

    @model_validator(mode="after")
    def _exactly_one(self) -> Target:
        if sum((self.goto is not None, self.queue is not None, self.emergency)) != 1:
            raise ValueError("needs exactly one of goto, queue or emergency = true")
        return self


class Node(_Model):
    prompt: str
    all_languages: bool = False  # play the prompt in every language (a language menu)
    options: dict[str, Target] = Field(default_factory=dict)
    timeout: Seconds | None = None
    retries: Annotated[int, Field(ge=0, le=5)] | None = None
    # Where the caller goes after the last retry; a hotline never hangs up on an undecided caller.
    on_fail: Target | None = None


class MenuSettings(_Model):
    start: str
    welcome: str | None = None  # played once, before the start menu
    invalid: str  # "that key is not an option"
    no_input: str | None = None  # "we did not hear a key" (before re-prompting)
    connecting: str | None = None  # "connecting you", after the last choice
    emergency: str | None = None  # "connecting you to the emergency team", after the emergency key
    closed: str | None = None  # "closed now, leave a message after the tone"
    # "You have an open request, number…" then its digits (prompts digit_0…digit_9), after the
    # welcome, for a caller whose earlier case is still open; unset: not mentioned.
    open_ticket: str | None = None
    # Then, when the agent who handled that case is free: "press <offer digit> to be put through to
    # them" (one prompt, in the first language, before any menu); no key or another key: the menus.
    open_ticket_offer: str | None = None
    open_ticket_offer_digit: Digit = "1"
    open_ticket_offer_timeout: Seconds = 4.0
    emergency_digit: Digit = "9"
    # Pressed while the emergency notice plays (or right after the emergency key): the caller
    # cannot speak. The notice stops, nothing more is said to them, and the pages say so.
    silent_digit: Digit | None = None
    repeat_digit: Digit = "#"
    back_digit: Digit = "*"
    timeout: Seconds = 5.0
    retries: Annotated[int, Field(ge=0, le=5)] = 2
    operator_queue: str = "operator"
    emergency_queue: str = "emergency"
    voicemail_seconds: Annotated[int, Field(ge=10, le=600)] = 120


class IvrConfig(_Model):
    menu: MenuSettings
    prompts: dict[str, dict[str, str]]
    nodes: dict[str, Node]

    @model_validator(mode="after")
    def _tree(self, info: ValidationInfo) -> IvrConfig:
        check_tree(self, set((info.context or {}).get("queues", ())))
        return self

    def languages(self, default: str) -> set[str]:
        """Every language a caller can end up hearing."""
        found = {default}
        for node in self.nodes.values():
            for target in [*node.options.values(), node.on_fail]:
                if target is not None and target.language:
                    found.add(target.language)
        return found


class TreeError(ValueError):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key


def _targets(config: IvrConfig) -> list[tuple[str, Target]]:
    found: list[tuple[str, Target]] = []
    for name, node in config.nodes.items():
        found += [(f"nodes.{name}.options.{digit}", t) for digit, t in node.options.items()]
        if node.on_fail is not None:
            found.append((f"nodes.{name}.on_fail", node.on_fail))
    return found


def check_tree(config: IvrConfig, queues: set[str]) -> None:
    """Validate the menus; ``queues`` are the queue ids callers can be sent to."""
    menu = config.menu
    if menu.start not in config.nodes:
        raise TreeError("menu.start", f"no menu named {menu.start!r}")
    for key, queue in (
        ("menu.operator_queue", menu.operator_queue),
        ("menu.emergency_queue", menu.emergency_queue),
    ):
        if queue not in queues:
            raise TreeError(key, f"no queue named {queue!r}")
    reserved = {menu.emergency_digit: "emergency", menu.repeat_digit: "repeat", menu.back_digit: "back"}
    if len(reserved) != 3:
        raise TreeError("menu", "emergency_digit, repeat_digit and back_digit must differ")
    if menu.silent_digit is not None and menu.silent_digit == menu.emergency_digit:
        raise TreeError("menu.silent_digit", "must differ from emergency_digit (it follows it)")
    if menu.open_ticket_offer and not menu.open_ticket:
        raise TreeError(
            "menu.open_ticket_offer", "needs menu.open_ticket (the offer follows the case number)"
        )
    if menu.open_ticket_offer and menu.open_ticket_offer_digit in reserved:
        digit = menu.open_ticket_offer_digit
        raise TreeError("menu.open_ticket_offer_digit", f"{digit} is the {reserved[digit]} key in every menu")
    for name, node in config.nodes.items():
        for digit, target in node.options.items():
            key = f"nodes.{name}.options.{digit}"
            if digit not in DIGITS or len(digit) != 1:
                raise TreeError(key, "an option key is one of 0-9, * or #")
            if digit in reserved and not (digit == menu.emergency_digit and target.emergency):
                raise TreeError(key, f"{digit} is the {reserved[digit]} key in every menu")
    for key, target in _targets(config):
        if target.goto is not None and target.goto not in config.nodes:
            raise TreeError(f"{key}.goto", f"no menu named {target.goto!r}")
        if target.queue is not None and target.queue not in queues:
            raise TreeError(f"{key}.queue", f"no queue named {target.queue!r}")
    reachable, todo = set(), [menu.start]
    while todo:
        name = todo.pop()
        if name in reachable:
            continue
        reachable.add(name)
        node = config.nodes[name]
        todo += [t.goto for t in [*node.options.values(), node.on_fail] if t is not None and t.goto]
    unreachable = sorted(set(config.nodes) - reachable)
    if unreachable:
        raise TreeError(f"nodes.{unreachable[0]}", f"unreachable from menu.start {menu.start!r}")
    used = [("menu.invalid", menu.invalid)]
    optional = ("welcome", "no_input", "connecting", "emergency", "closed", "open_ticket_offer")
    used += [(f"menu.{k}", getattr(menu, k)) for k in optional if getattr(menu, k)]
    used += [(f"nodes.{name}.prompt", node.prompt) for name, node in config.nodes.items()]
    if menu.open_ticket:
        used += [("menu.open_ticket", menu.open_ticket)]
        used += [("menu.open_ticket", f"digit_{d}") for d in range(10)]  # the number is read digit by digit
    for key, prompt in used:
        if prompt not in config.prompts:
            raise TreeError(key, f"no prompt named {prompt!r} in [prompts]")


def check_languages(config: IvrConfig, default: str, source: str) -> None:
    """Every prompt must speak every language a caller can choose (checked once languages are known)."""
    for language in sorted(config.languages(default)):
        for name, texts in config.prompts.items():
            if language not in texts:
                raise IvrConfigError(
                    f"{source}: prompts.{name}: no {language!r} text, but callers can choose it"
                )


def load_ivr(path: Path, queues: Iterable[str], default_language: str = "tr") -> IvrConfig:
    """Load and validate the menus against the queue ids that exist."""
    data = read_toml(path, IvrConfigError)
    try:
        config = IvrConfig.model_validate(data, context={"queues": set(queues)})
    except ValidationError as exc:
        err = exc.errors()[0]
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, TreeError):
            raise IvrConfigError(f"{path}: {cause}") from None
        raise IvrConfigError(f"{path}: {describe_error(err)}") from None
    check_languages(config, default_language, str(path))
    return config
