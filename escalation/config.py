"""Who is paged, how, and in which order (``config/escalation.toml``), validated at start-up.

Targets are the teams that can be paged (a police duty desk, the gendarmerie, 112, the on-call
social worker, the supervisor on duty), each with the channels it has. Policies, in file order,
say which levels page which targets for a category and severity; the last policy must catch
every category at every severity, so no urgent case ever finds no policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from escalation.channels import ChannelKind
from escalation.errors import EscalationConfigError
from escalation.models import Severity
from escalation.service import Level, Policy
from hotline.settings import describe_error, read_toml

Name = Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=64)]
Seconds = Annotated[float, Field(ge=0, le=86_400)]
Url = Annotated[str, Field(pattern=r"^https?://[^\s]+$")]
Digit = Annotated[str, Field(pattern=r"^[0-9*#]$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Voice(_Model):
    """A desk phone: ``contact`` (a SIP URI: Asterisk gets an endpoint ``desk-<target>`` for it,
    which a desk phone may also register to) or ``dial`` (any Asterisk dial string, e.g. a number
    through a trunk: ``PJSIP/155@trunk``)."""

    contact: str | None = None
    dial: str | None = None
    registers: bool = False  # no fixed contact: the desk phone registers as desk-<target>

    @model_validator(mode="after")
    def _one(self) -> Voice:
        if sum((self.contact is not None, self.dial is not None, self.registers)) != 1:
            raise ValueError("needs exactly one of contact, dial or registers = true")
        return self


class Webhook(_Model):
    url: Url
    secret_file: str | None = None  # default: a secret generated in the state folder


class Target(_Model):
    label: dict[str, str]
    language: str = "tr"  # what the voice page speaks and the messages are written in
    voice: Voice | None = None
    webhook: Webhook | None = None
    sms: Annotated[str, Field(pattern=r"^\+?[0-9]{7,15}$")] | None = None
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")] | None = None

    def channels(self) -> tuple[ChannelKind, ...]:
        present = {
            ChannelKind.voice: self.voice,
            ChannelKind.webhook: self.webhook,
            ChannelKind.sms: self.sms,
            ChannelKind.email: self.email,
        }
        return tuple(kind for kind, value in present.items() if value is not None)


class LevelSection(_Model):
    targets: list[Name] = Field(min_length=1)
    delay: Seconds = 0.0
    ack_timeout: Annotated[float, Field(ge=5, le=86_400)] = 60.0
    channels: list[Annotated[ChannelKind, Field(strict=False)]] | None = None
    by_province: dict[str, list[Name]] = Field(default_factory=dict)


class PolicySection(_Model):
    id: Name
    categories: list[str] = Field(min_length=1)  # "*": every category
    min_severity: Annotated[Severity, Field(strict=False)] = Severity.low
    repeat: Annotated[int, Field(ge=0, le=20)] = 1
    ack_expiry: Annotated[float, Field(ge=30, le=86_400)] = 1800.0
    levels: list[LevelSection] = Field(min_length=1)

    def policy(self) -> Policy:
        levels = tuple(
            Level(
                tuple(level.targets),
                delay=level.delay,
                ack_timeout=level.ack_timeout,
                channels=tuple(level.channels) if level.channels is not None else None,
                by_province=tuple((p, tuple(t)) for p, t in level.by_province.items()),
            )
            for level in self.levels
        )
        return Policy(
            self.id,
            levels,
            categories=frozenset(self.categories),
            min_severity=self.min_severity,
            repeat=self.repeat,
            ack_expiry=self.ack_expiry,
        )


class SmsGateway(_Model):
    url: Url
    token_file: str | None = None
    to_field: str = "to"
    text_field: str = "text"
    reference_field: str = "reference"


class EmailGateway(_Model):
    host: str
    port: Annotated[int, Field(ge=1, le=65_535)] = 587
    sender: str
    starttls: bool = True
    username: str | None = None
    password_file: str | None = None


class Gateways(_Model):
    sms: SmsGateway | None = None
    email: EmailGateway | None = None


class VoicePage(_Model):
    """How a voice page is spoken and answered."""

    accept_digit: Digit = "1"
    pass_digit: Digit = "2"
    plays: Annotated[int, Field(ge=1, le=10)] = 3  # times the message is said before giving up
    ring_timeout: Annotated[int, Field(ge=5, le=120)] = 30


class Signals(_Model):
    """Urgency signals besides the IVR key and the spoken words."""

    repeat_calls: Annotated[int, Field(ge=2, le=20)] | None = 3  # calls from one number ...
    repeat_window_minutes: Annotated[int, Field(ge=1, le=1440)] = 60  # ... within this time
    callback_abandoned: bool = True  # duty of care: call an urgent caller back who hung up


class EscalationConfig(_Model):
    targets: dict[Name, Target] = Field(min_length=1)
    policies: list[PolicySection] = Field(min_length=1)
    gateways: Gateways = Gateways()
    voice: VoicePage = VoicePage()
    signals: Signals = Signals()

    @model_validator(mode="after")
    def _consistent(self) -> EscalationConfig:
        seen: set[str] = set()
        for n, section in enumerate(self.policies):
            if section.id in seen:
                raise ValueError(f"policies.{n}.id: {section.id!r} is used twice")
            seen.add(section.id)
            for m, level in enumerate(section.levels):
                self._check_level(f"policies.{n}.levels.{m}", level)
        last = self.policies[-1]
        if "*" not in last.categories or last.min_severity is not Severity.low:
            raise ValueError(
                f"policies.{len(self.policies) - 1}: the last policy must catch every case "
                '(categories = ["*"], min_severity = "low")'
            )
        for name, target in self.targets.items():
            if not target.channels():
                raise ValueError(f"targets.{name}: has no channel (voice, webhook, sms or email)")
            if target.sms and self.gateways.sms is None:
                raise ValueError(f"targets.{name}.sms: needs [gateways.sms]")
            if target.email and self.gateways.email is None:
                raise ValueError(f"targets.{name}.email: needs [gateways.email]")
        if self.voice.accept_digit == self.voice.pass_digit:
            raise ValueError("voice: accept_digit and pass_digit must differ")
        return self

    def _check_level(self, key: str, level: LevelSection) -> None:
        named = [*level.targets, *(t for ts in level.by_province.values() for t in ts)]
        for target in named:
            if target not in self.targets:
                raise ValueError(f"{key}: unknown target {target!r}; targets are {sorted(self.targets)}")
        if level.channels is not None:
            for target in level.targets:
                if not set(level.channels) & set(self.targets[target].channels()):
                    raise ValueError(f"{key}: target {target!r} has none of the channels {level.channels}")

    def policy_list(self) -> tuple[Policy, ...]:
        return tuple(section.policy() for section in self.policies)

    def channels_of(self, level: Level, target: str) -> tuple[ChannelKind, ...]:
        has = self.targets[target].channels()
        return has if level.channels is None else tuple(c for c in has if c in level.channels)


def load_escalation(path: Path) -> EscalationConfig:
    data = read_toml(path, EscalationConfigError)
    try:
        return EscalationConfig.model_validate(data)
    except ValidationError as exc:
        raise EscalationConfigError(f"{path}: {describe_error(exc.errors()[0])}") from None
