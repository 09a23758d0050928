"""Typed settings loaded from ``hotline.toml`` with ``HOTLINE_<SECTION>__<KEY>`` overrides.

A bad file never half-starts the hotline: every problem is reported as one line naming the
source (file or environment variable), the dotted key and the reason, and start-up stops.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

ENV_PREFIX = "HOTLINE_"
DEFAULT_CONFIG = Path("config/hotline.toml")
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class SettingsError(Exception):
    """A configuration problem; ``str()`` is the single line shown to the operator."""


Port = Annotated[int, Field(ge=1, le=65535)]
PositiveSeconds = Annotated[float, Field(gt=0)]
DialledNumber = Annotated[str, Field(pattern=r"^[0-9]+$")]
QueueId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")]


class _Section(BaseModel):
    # Strict: "8080" is not a port and an unknown key is a typo, not something to ignore.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class HotlineSection(_Section):
    state_dir: str = "state"
    languages: list[str] = Field(default_factory=lambda: ["tr", "en"], min_length=1)
    # On SIGTERM/SIGINT: "fallback" hands live calls to the dialplan fallback (ring the agents
    # directly); "keep" leaves them in Asterisk for the next start to re-adopt (quick restarts).
    on_stop: Literal["fallback", "keep"] = "fallback"
    # The site's local time, for times people read (transcript text).
    timezone: str = "Europe/Istanbul"
    # The working-day calendar (hotline.workdays): Türkiye's public holidays and half-day eves
    # come from the holidays library; these are the site's own additions and exceptions.
    holidays_extra: list[date] = Field(default_factory=list)  # more closed days
    half_days_extra: list[date] = Field(default_factory=list)  # more eves, closed from half_day_until
    holidays_worked: list[date] = Field(default_factory=list)  # listed days this site works anyway
    half_day_until: str = Field(default="13:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _holidays_agree(self) -> HotlineSection:
        worked = set(self.holidays_worked)
        for key, days in (("holidays_extra", self.holidays_extra), ("half_days_extra", self.half_days_extra)):
            both = sorted(worked.intersection(days))
            if both:
                raise ValueError(f"{key} and holidays_worked both list {both[0]}")
        both = sorted(set(self.holidays_extra).intersection(self.half_days_extra))
        if both:
            raise ValueError(f"holidays_extra and half_days_extra both list {both[0]}")
        return self


class AriSection(_Section):
    url: str = "http://127.0.0.1:8088"
    app: str = Field(default="hotline", pattern=r"^[A-Za-z0-9_-]+$")
    user: str = Field(default="hotline", pattern=r"^[A-Za-z0-9_-]+$")
    password: str = ""
    request_timeout: PositiveSeconds = 10.0

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
            raise ValueError("must look like http://HOST:PORT")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials; set ari.user and ari.password")
        return value.rstrip("/")

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 0


class WebSection(_Section):
    host: str = "127.0.0.1"
    port: Port = 8080
    # A session ends after this long without a request, and at the latest this long after sign-in.
    session_idle: PositiveSeconds = 7200.0
    session_lifetime: PositiveSeconds = 43200.0
    # Failed sign-ins allowed per username and client address within login_window seconds.
    login_attempts: Annotated[int, Field(ge=1)] = 5
    login_window: PositiveSeconds = 900.0
    # Addresses of reverse proxies terminating TLS in front of us: from these alone the
    # X-Forwarded-Proto and X-Forwarded-For headers are believed (for Secure cookies and for
    # counting sign-in attempts per real client). Empty: no proxy is trusted.
    trusted_proxies: list[IPvAnyAddress] = Field(default_factory=list)


class DatabaseSection(_Section):
    url: str = ""
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.split(":", 1)[0].startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL (or empty for the default)")
        return value


class AgentSection(_Section):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    name: str
    password: str = ""
    languages: list[str] = Field(default_factory=lambda: ["tr"])
    queues: list[str] = Field(default_factory=list)  # empty: every queue
    skills: dict[str, Annotated[int, Field(ge=1, le=5)]] = Field(default_factory=dict)
    # A fixed SIP contact (sip:user@host:port) for phones that do not register, e.g. test desks.
    contact: str = ""
    # Logged in on the first start (a static member); otherwise the agent logs in at the desktop.
    # Later starts keep what the agent last did (logged out, paused with a reason).
    login_at_start: bool = True


class AsteriskSection(_Section):
    mode: Literal["auto", "system", "chroot", "external"] = "auto"
    binary: str = ""
    modules_dir: str = ""
    root_cache: str = ""
    mirror: str = ""
    sip_host: str = "127.0.0.1"
    sip_port: Port = 5060
    rtp_start: Port = 10000
    rtp_end: Port = 10999
    extension: str = Field(default="183", pattern=r"^[0-9]+$")
    # Numbers that skip the IVR and go straight into one queue: {"1830" = "operator"}.
    direct: dict[DialledNumber, QueueId] = Field(default_factory=dict)
    # Numbers served by Asterisk's own app_queue instead of the hotline, with the same queue
    # settings and agents: a side-by-side baseline (bench/queue_vs_app_queue.py), not for callers.
    app_queue: dict[DialledNumber, QueueId] = Field(default_factory=dict)
    caller_password: str = ""
    start_timeout: PositiveSeconds = 60.0
    # A line can die without a BYE (phone gone, network down): Asterisk hangs up a call that has
    # sent no audio for rtp_timeout seconds (rtp_timeout_hold while on hold; 0: never), and
    # refreshes the SIP session every session_expires / 2 seconds (RFC 4028 session timers),
    # ending it when a refresh goes unanswered. Whole seconds: Asterisk takes no fractions.
    rtp_timeout: Annotated[int, Field(ge=0)] = 30
    rtp_timeout_hold: Annotated[int, Field(ge=0)] = 300
    # yes: with phones and carriers that ask for them; always: even with those that do not
    # (we refresh); no: never.
    session_timers: Literal["yes", "always", "no"] = "yes"
    session_expires: Annotated[int, Field(ge=90)] = 90
    # The shortest session interval we accept from the far end (RFC 4028 allows no less than 90).
    session_min_se: Annotated[int, Field(ge=90)] = 90

    @model_validator(mode="after")
    def _rtp_range(self) -> AsteriskSection:
        if self.rtp_end <= self.rtp_start:
            raise ValueError("rtp_end must be above rtp_start")
        return self

    @model_validator(mode="after")
    def _session_interval(self) -> AsteriskSection:
        if self.session_expires < self.session_min_se:
            raise ValueError("session_expires must be at least session_min_se")
        return self

    @model_validator(mode="after")
    def _numbers_differ(self) -> AsteriskSection:
        seen = {self.extension: "extension"}
        for key in ("direct", "app_queue"):
            for number in getattr(self, key):
                if number in seen:
                    raise ValueError(f"{key}: {number} is already the {seen[number]} number")
                seen[number] = f"{key}.{number}"
        return self


EngineName = Literal["vosk", "whisper"]
RedactKind = Literal["tckn", "phone", "iban", "email"]
RoleName = Literal["agent", "supervisor", "admin"]


def _stream_limits() -> dict[EngineName, int]:
    return {"vosk": 12, "whisper": 2}


def _all_redactions() -> list[RedactKind]:
    return ["tckn", "phone", "iban", "email"]


def _admins() -> list[RoleName]:
    return ["admin"]


class SpeechLanguage(_Section):
    """How one language is transcribed."""

    # vosk: streaming partials, dozens of streams; whisper: multilingual, cut by voice activity.
    engine: Literal["vosk", "whisper"] = "whisper"
    # For vosk: a model folder, relative to speech.models_dir (or absolute).
    model: str = ""
    # For vosk: the engine used when the model folder is missing; empty: start-up stops instead.
    fallback: Literal["whisper", ""] = ""


class SpeechRecording(_Section):
    """Per-call recordings through ARI, kept in Asterisk's recording store."""

    # off; mixed: both sides in one file; sides: one file per speaker (also what a call beyond the
    # live capacity is transcribed from after it ends, whatever this says).
    mode: Literal["off", "mixed", "sides"] = "off"
    retention_days: Annotated[int, Field(ge=1)] = 30


class SpeechSection(_Section):
    enabled: bool = True
    # Where operators put Vosk models (e.g. models/vosk-model-small-tr-0.3).
    models_dir: str = "models"
    # Whisper weights: "base" (multilingual, installed with the hotline), "tiny.en" (English
    # only, installed with the test extras) or a faster-whisper model folder.
    whisper_model: str = "base"
    # Per language; a language not listed uses whisper.
    languages: dict[str, SpeechLanguage] = Field(default_factory=dict)
    # Live streams each engine may run at once (measure with bench/transcribe_capacity.py);
    # a call beyond them is recorded and transcribed after it ends (degraded, shown on the call).
    max_streams: dict[EngineName, Annotated[int, Field(ge=0)]] = Field(default_factory=_stream_limits)
    # Audio reaches us as RTP from Asterisk's externalMedia channels, one UDP port per stream.
    rtp_host: str = "127.0.0.1"
    rtp_start: Port = 20000
    rtp_end: Port = 20999
    # Threads that decode speech (the event loop never does).
    threads: Annotated[int, Field(ge=1, le=64)] = 2
    # Personal data replaced in stored and shown text: tckn, phone, iban, email.
    redact: list[RedactKind] = Field(default_factory=_all_redactions)
    # Keep the unredacted text as well, shown only to these roles.
    keep_raw: bool = False
    raw_roles: list[RoleName] = Field(default_factory=_admins)
    recording: SpeechRecording = SpeechRecording()

    @model_validator(mode="after")
    def _rtp_range(self) -> SpeechSection:
        if self.rtp_end <= self.rtp_start:
            raise ValueError("rtp_end must be above rtp_start")
        return self


class LoggingSection(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "console", "json"] = "auto"


class PromptsSection(_Section):
    """How prompts are made; their texts live with the menus in ivr.menus."""

    # A recorded WAV at <recordings>/<language>/<name>.wav replaces the synthesised voice.
    recordings: str = "config/prompts"
    voices: dict[str, str] = Field(default_factory=lambda: {"tr": "tr", "en": "en", "ar": "ar"})


class IvrSection(_Section):
    menus: str = "config/ivr.toml"


class QueuesSection(_Section):
    file: str = "config/queues.toml"


class TicketsSection(_Section):
    file: str = "config/tickets.toml"


class EscalationSection(_Section):
    enabled: bool = True
    file: str = "config/escalation.toml"
    keywords: str = "config/keywords.toml"


class Settings(_Section):
    hotline: HotlineSection = HotlineSection()
    ari: AriSection = AriSection()
    web: WebSection = WebSection()
    database: DatabaseSection = DatabaseSection()
    asterisk: AsteriskSection = AsteriskSection()
    agents: list[AgentSection] = Field(default_factory=list)
    speech: SpeechSection = SpeechSection()
    logging: LoggingSection = LoggingSection()
    prompts: PromptsSection = PromptsSection()
    ivr: IvrSection = IvrSection()
    queues: QueuesSection = QueuesSection()
    tickets: TicketsSection = TicketsSection()
    escalation: EscalationSection = EscalationSection()

    # Where the settings came from, for messages; not a configuration key.
    _source: str = PrivateAttr(default="<defaults>")

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        managed = self.asterisk.mode != "external"
        if managed and self.ari.host not in LOOPBACK_HOSTS:
            raise ValueError("ari.url must be on loopback when the hotline runs Asterisk itself")
        ids = [a.id for a in self.agents]
        if len(ids) != len(set(ids)):
            raise ValueError(f"agents: duplicate id in {ids}")
        if not managed and not self.ari.password:
            raise ValueError("ari.password is required when asterisk.mode is 'external'")
        return self

    @property
    def source(self) -> str:
        """The file the settings were read from, for messages about them."""
        return self._source

    @property
    def state_path(self) -> Path:
        return Path(self.hotline.state_dir).resolve()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.state_path / 'hotline.db'}"


def _env_overrides(environ: Mapping[str, str]) -> dict[str, tuple[str, Any]]:
    """Return {dotted.key: (env var name, value)}; values are parsed as TOML literals when they can be."""
    found: dict[str, tuple[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        dotted = name[len(ENV_PREFIX) :].lower().replace("__", ".")
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        if is_secret(dotted) and not isinstance(value, str):
            value = raw  # a password of digits is still a password, not a number
        found[dotted] = (name, value)
    return found


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise SettingsError(f"{part}: cannot override inside a non-table value")
        node = child
    node[leaf] = value


def error_key(err: Mapping[str, Any]) -> str:
    """The dotted key of a validation error, list positions as [i] (e.g. ``agents[1].name``)."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")


def is_secret(key: str) -> bool:
    """A key whose value is a secret (a password, token or URL that may carry one): never echoed."""
    leaf = key.rsplit(".", 1)[-1]
    return leaf.endswith(("password", "secret", "token")) or key == "database.url"


def error_reason(err: Mapping[str, Any], secret: bool = False) -> str:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if "input" in err and kind.endswith("_type"):
        return f"{msg.lower()}" if secret else f"{msg.lower()}, got {err['input']!r}"
    return str(msg).removeprefix("Value error, ")


def describe_error(err: Mapping[str, Any]) -> str:
    key = error_key(err)
    reason = error_reason(err, secret=is_secret(key))
    return f"{key}: {reason}" if key else reason


def read_toml(path: Path, error: type[SettingsError] = SettingsError) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Load and validate settings; raise SettingsError with one clear line on any problem."""
    environ = os.environ if environ is None else environ
    path = path or Path(environ.get("HOTLINE_CONFIG", DEFAULT_CONFIG))
    data = read_toml(path)
    overrides = _env_overrides(environ)
    for dotted, (_name, value) in overrides.items():
        _set_dotted(data, dotted, value)

    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = error_key(err)
        origin = next((name for dotted, (name, _) in overrides.items() if key.startswith(dotted)), None)
        where = f"{origin} (environment)" if origin else str(path)
        raise SettingsError(f"{where}: {describe_error(err)}") from None
    settings._source = str(path)
    return settings
