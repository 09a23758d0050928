"""What can go wrong with a ticket change; ``http.py`` maps each to a status code."""

from __future__ import annotations


class TicketError(Exception):
    """Base of every ticket error; the message says why, in words fit for the desktop."""


class NotFound(TicketError):
    """No such ticket (or no such related ticket)."""


class NotAllowed(TicketError):
    """This user's role (or their link to the ticket) does not permit the change."""


class BadTransition(TicketError):
    """The workflow has no such step from the ticket's current status."""


class Invalid(TicketError):
    """The change is malformed: an unknown field, a bad value, a step whose condition is unmet."""


class Conflict(TicketError):
    """Someone changed the ticket since it was read; read it again and retry."""
