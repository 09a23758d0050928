"""Prompt audio: a recorded file when the operator supplied one, otherwise offline speech synthesis.

Files are 8 kHz mono 16-bit WAV (Asterisk's native telephone format, no transcoding on play) and
are named by a hash of voice and text, so an edited text yields a new file and an unchanged one
is never synthesised twice.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class PromptError(Exception):
    """A prompt could not be produced; the message names the prompt and the reason."""


@dataclass(frozen=True, slots=True)
class Prompt:
    name: str
    language: str
    text: str
    voice: str

    @property
    def stem(self) -> str:
        digest = hashlib.sha256(f"{self.voice}\0{self.text}".encode()).hexdigest()[:12]
        return f"{self.name}-{self.language}-{digest}"


def _run(cmd: list[str], what: str) -> None:
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    except FileNotFoundError:
        raise PromptError(f"{what}: {cmd[0]} is not installed") from None
    except subprocess.CalledProcessError as exc:
        raise PromptError(f"{what}: {cmd[0]} failed: {exc.stderr.decode(errors='replace').strip()}") from None


def to_telephone_wav(source: Path, target: Path, what: str) -> None:
    """Convert any audio sox reads to 8 kHz mono 16-bit WAV, atomically."""
    tmp = target.with_suffix(".tmp.wav")
    _run(["sox", str(source), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(tmp)], what)
    tmp.replace(target)


def synthesise(prompt: Prompt, target: Path) -> None:
    what = f"prompt {prompt.name}/{prompt.language}"
    with tempfile.TemporaryDirectory(prefix="hotline-tts-") as tmp:
        raw = Path(tmp) / "tts.wav"
        _run(["espeak-ng", "-v", prompt.voice, "-s", "150", "-w", str(raw), prompt.text], what)
        to_telephone_wav(raw, target, what)


def build_prompt(prompt: Prompt, out_dir: Path, recordings: Path | None = None) -> Path:
    """Return the WAV path for the prompt (without building it again when it exists)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    recorded = recordings / prompt.language / f"{prompt.name}.wav" if recordings else None
    if recorded and recorded.is_file():
        target = out_dir / f"{prompt.name}-{prompt.language}-recorded.wav"
        if not target.exists() or target.stat().st_mtime < recorded.stat().st_mtime:
            to_telephone_wav(recorded, target, f"prompt {prompt.name}/{prompt.language}")
        return target
    target = out_dir / f"{prompt.stem}.wav"
    if not target.exists():
        synthesise(prompt, target)
    return target


def build_prompts(
    texts: Mapping[str, Mapping[str, str]],
    voices: Mapping[str, str],
    out_dir: Path,
    recordings: Path | None = None,
) -> dict[tuple[str, str], Path]:
    """Build every (prompt name, language) in ``texts``; return their WAV paths."""
    built: dict[tuple[str, str], Path] = {}
    for name, by_language in texts.items():
        for language, text in by_language.items():
            voice = voices.get(language, language)
            built[name, language] = build_prompt(Prompt(name, language, text, voice), out_dir, recordings)
    return built


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None and shutil.which("sox") is not None
