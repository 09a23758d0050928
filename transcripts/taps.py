"""Listening to one side of a call without touching it: a snoop on that side's channel, then
either an externalMedia channel streaming it to us as RTP (live), or a recording (after the call).

Why RTP with a port pool rather than Asterisk 22's WebSocket media: RTP over UDP is what Asterisk
has streamed for years and needs no extra module; a lost packet costs 20 ms of audio rather than
stalling a TCP stream behind it; and on one host a port per stream is cheap (2 per call).

A snoop and an externalMedia channel can only join a bridge once each has entered our app
(adding earlier answers 422), so every tap waits for their ``StasisStart``. Every channel and
bridge a tap makes carries the ``hotline-tx-`` prefix, so one left by a crashed run is known as
ours and removed on the next resync.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import structlog

from ari import AriClient
from ari import events as ev
from transcripts.media import PortPool, RtpReceiver
from transcripts.stream import LiveStream

log = structlog.get_logger(__name__)

PREFIX = "hotline-tx-"
ENTER_TIMEOUT = 5.0


@dataclass(eq=False)
class Tap:
    """One side of one call, listened to: live (``receiver`` + ``stream``) or recorded."""

    call_id: str
    side: str  # caller, agent or mixed
    channel_id: str  # the channel listened to
    agent_id: str = ""
    engine: str = ""  # the live engine holding a slot of capacity, if any
    snoop_id: str = ""
    media_id: str = ""
    bridge_id: str = ""
    recording: str = ""  # the recording's name, when recorded
    receiver: RtpReceiver | None = None
    stream: LiveStream | None = None
    removed: bool = False


class Taps:
    def __init__(self, ari: AriClient, ports: PortPool) -> None:
        self.ari = ari
        self.ports = ports
        self._entering: dict[str, asyncio.Future[None]] = {}

    def entered(self, event: ev.StasisStart) -> bool:
        """A channel of ours entered the app; True when it was one a tap waits for."""
        waiter = self._entering.pop(event.channel.id, None)
        if waiter is None:
            return False
        if not waiter.done():
            waiter.set_result(None)
        return True

    async def listen(self, tap: Tap, spy: str, stream: LiveStream) -> None:
        """Stream the side to ``stream`` as it is spoken. On failure, what was made is removed."""
        key = uuid.uuid4().hex
        try:
            tap.receiver = await self.ports.lease(stream.audio)
            tap.stream = stream
            await self._snoop(tap, spy, key)
            host, port = tap.receiver.address
            tap.media_id = f"{PREFIX}{key}-m"
            arrived = self._expect(tap.media_id)
            await self.ari.channels.external_media(
                channel_id=tap.media_id,
                external_host=f"{host}:{port}",
                format="slin16",
                data=f"transcript,{tap.call_id},media",
            )
            await asyncio.wait_for(arrived, ENTER_TIMEOUT)
            tap.bridge_id = f"{PREFIX}{key}-b"
            await self.ari.bridges.create(
                type="mixing", bridge_id=tap.bridge_id, name=f"transcript {tap.call_id}"
            )
            await self.ari.bridges.add_channel(tap.bridge_id, [tap.snoop_id, tap.media_id])
        except BaseException:
            await self.remove(tap)
            raise

    async def record(self, tap: Tap, spy: str, name: str) -> None:
        """Record the side into Asterisk's store as 16 kHz signed linear, until the snoop ends."""
        tap.recording = name
        try:
            await self._snoop(tap, spy, uuid.uuid4().hex)
            await self.ari.channels.record(tap.snoop_id, name, format="sln16", if_exists="overwrite")
        except BaseException:
            await self.remove(tap)
            raise

    async def remove(self, tap: Tap) -> None:
        """Take the tap down (each part once, whatever is already gone); the call is untouched.
        A recording ends with its snoop and stays in the store."""
        if tap.removed:
            return
        tap.removed = True
        for waiting in (tap.snoop_id, tap.media_id):
            self._entering.pop(waiting, None)
        for channel in (tap.snoop_id, tap.media_id):
            if channel:
                await self._quietly(self.ari.channels.hangup(channel))
        if tap.bridge_id:
            await self._quietly(self.ari.bridges.destroy(tap.bridge_id, missing_ok=True))
        if tap.receiver is not None:
            tap.receiver.close()
            await tap.receiver.wait_closed()

    async def _snoop(self, tap: Tap, spy: str, key: str) -> None:
        tap.snoop_id = f"{PREFIX}{key}-s"
        arrived = self._expect(tap.snoop_id)
        await self.ari.channels.snoop(
            tap.channel_id, spy=spy, app_args=["transcript", tap.call_id, tap.side], snoop_id=tap.snoop_id
        )
        await asyncio.wait_for(arrived, ENTER_TIMEOUT)

    def _expect(self, channel_id: str) -> asyncio.Future[None]:
        # Registered before the request: the StasisStart can come before the REST answer.
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._entering[channel_id] = waiter
        return waiter

    async def _quietly(self, request: object) -> None:
        try:
            await request  # type: ignore[misc]
        except Exception as exc:  # tidying up must go on past a part that is already gone
            log.warning("tap_part_not_removed", error=str(exc))
