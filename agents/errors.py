"""What the agents package refuses, with the HTTP status an API answers it with."""

from __future__ import annotations


class CommandError(Exception):
    """A command that cannot be carried out now (e.g. resume an agent who is not paused)."""

    status = 409


class UnknownTarget(CommandError):
    """No such agent, queue or call."""

    status = 404


class BadRequest(CommandError):
    """The command itself is wrong (e.g. a pause reason that is not configured)."""

    status = 400
