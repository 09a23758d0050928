"""Errors raised by the ARI client.

Every failed REST call raises an :class:`AriError` (or a subclass) carrying the HTTP method and
path, so a log line says exactly which request failed. Credentials are never part of an error.
"""

from __future__ import annotations


class AriError(Exception):
    """A REST request to Asterisk failed.

    ``status`` is the HTTP status, or ``None`` when no response arrived (see :class:`AriConnectionError`).
    """

    def __init__(self, status: int | None, message: str, method: str, path: str) -> None:
        super().__init__(status, message, method, path)
        self.status = status
        self.message = message
        self.method = method
        self.path = path

    def __str__(self) -> str:
        status = "no response" if self.status is None else str(self.status)
        return f"{self.method} {self.path}: {status} {self.message}"


class BadRequest(AriError):
    """400: a parameter is missing or invalid."""


class NotFound(AriError):
    """404: the channel, bridge, playback or recording does not exist (any more)."""


class Conflict(AriError):
    """409: the object is in the wrong state for the request (e.g. channel not in our Stasis app)."""


class Unprocessable(AriError):
    """422: the request was understood but cannot be carried out (e.g. channel not yet in Stasis)."""


class AriConnectionError(AriError):
    """No HTTP response: connection refused or reset, timeout, or the client is closed."""

    def __init__(self, message: str, method: str, path: str) -> None:
        super().__init__(None, message, method, path)


_BY_STATUS: dict[int, type[AriError]] = {400: BadRequest, 404: NotFound, 409: Conflict, 422: Unprocessable}


def error_for_status(status: int, message: str, method: str, path: str) -> AriError:
    """The most specific error class for an HTTP status."""
    return _BY_STATUS.get(status, AriError)(status, message, method, path)
