"""Typed asyncio client for the Asterisk REST Interface (ARI), on aiohttp.

    from ari import AriClient, NotFound
    from ari import events as ev

    async def on_event(event: ev.Event) -> None:       # per channel: in order, one at a time
        if isinstance(event, ev.StasisStart):
            await client.channels.answer(event.channel.id)
            await client.channels.play(event.channel.id, "sound:hello-world")
        elif isinstance(event, ev.Connected):            # first connection and every reconnect
            for channel in event.channels:                # calls we owned before a drop
                ...

    async with AriClient("http://127.0.0.1:8088", "hotline", password, "hotline") as client:
        client.on_event(on_event)
        runner = asyncio.create_task(client.run())        # returns after close() or ApplicationReplaced
        await client.wait_connected(timeout=10)
        ...

Modules: ``client`` (the supervisor: reconnect, resync, Connected/Disconnected), ``dispatch``
(ordering and back-pressure), ``events`` and ``models`` (typed views, ``raw`` always kept),
``rest`` (the transport: HTTP, or REST over the event socket), ``resources`` (one method per
operation), ``errors``, and
``testing`` (a fake Asterisk for unit tests: the server and its test controls, over the in-memory
model of ``fake_model`` and ``fake_registry``).
"""

from . import events, models
from .client import AriClient
from .errors import AriConnectionError, AriError, BadRequest, Conflict, NotFound, Unprocessable

__all__ = [
    "AriClient",
    "AriConnectionError",
    "AriError",
    "BadRequest",
    "Conflict",
    "NotFound",
    "Unprocessable",
    "events",
    "models",
]
