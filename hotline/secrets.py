"""Generated secrets (ARI, SIP and web passwords) kept as private files in the state folder."""

from __future__ import annotations

import os
import secrets

from hotline.settings import Settings


def secret(settings: Settings, name: str) -> str:
    """Read a generated secret from the state folder, creating it (mode 0600) on first use."""
    folder = settings.state_path / "secrets"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / name
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value
