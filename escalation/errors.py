"""What escalation refuses, by kind."""

from __future__ import annotations

from hotline.settings import SettingsError


class EscalationConfigError(SettingsError):
    """The escalation configuration is wrong; ``str()`` names the file, the key and the reason."""


class EscalationError(Exception):
    """Base of the errors an escalation command can meet."""


class NotFound(EscalationError):
    pass


class NotAllowed(EscalationError):
    pass
