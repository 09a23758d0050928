"""Test speech: English flite sentences as a telephone line carries them."""

from __future__ import annotations

import subprocess
from pathlib import Path

KNIFE = "My husband has a knife and he is threatening to kill me. Please send help."
NEIGHBOUR = "My neighbour is beating his child. Please send help quickly."


def phone_speech(text: str, folder: Path, voice: str = "rms") -> bytes:
    """flite speech through an 8 kHz µ-law phone line, back as 16 kHz s16 LE."""
    wav, line, raw = folder / f"{voice}.wav", folder / f"{voice}-line.wav", folder / f"{voice}.raw"
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(wav)], check=True)
    # -R: sox's dither noise repeatable, so the audio is the same on every run.
    subprocess.run(["sox", "-R", str(wav), "-r", "8000", "-e", "u-law", str(line)], check=True)
    subprocess.run(["sox", "-R", str(line), "-r", "16000", "-e", "signed", "-b", "16", str(raw)], check=True)
    return raw.read_bytes()
