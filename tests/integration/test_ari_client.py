"""The ARI client against the real Asterisk: a SIPp call answered, played to, snooped into an
external media stream, bridged and hung up; and a dropped WebSocket re-adopting the live call."""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from ari import AriClient
from ari import events as ev
from hotline import asterisk
from hotline.settings import Settings
from tests.harness import sipp
from tests.integration.proxy import TcpProxy

E = TypeVar("E", bound=ev.Event)


class Events:
    """Every event the client delivers, and a way to await the next one that matches."""

    def __init__(self) -> None:
        self.seen: list[ev.Event] = []
        self._changed = asyncio.Condition()

    async def __call__(self, event: ev.Event) -> None:
        async with self._changed:
            self.seen.append(event)
            self._changed.notify_all()

    async def wait(
        self, kind: type[E], where: Callable[[E], bool] = lambda _: True, timeout: float = 20
    ) -> E:
        async with asyncio.timeout(timeout), self._changed:
            while True:
                for event in self.seen:
                    if isinstance(event, kind) and where(event):
                        self.seen.remove(event)
                        return event
                await self._changed.wait()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[tuple[AriClient, Events]]:
    events = Events()
    client = AriClient(
        settings.ari.url, settings.ari.user, asterisk.ari_password(settings), settings.ari.app,
        heartbeat=2.0, backoff_base=0.05, backoff_max=0.5,
    )  # fmt: skip
    async with client:
        client.on_event(events)
        runner = asyncio.create_task(client.run())
        await client.wait_connected(timeout=10)
        yield client, events
    await runner


@pytest.fixture
def speech(tmp_path: Path) -> Path:
    wav = tmp_path / "speech.wav"
    text = "My neighbour is beating his child. Please send help quickly."
    subprocess.run(["flite", "-voice", "rms", "-t", text, "-o", str(wav)], check=True)
    return wav


def rtp_receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


async def receive_rtp(sock: socket.socket, packets: int) -> list[bytes]:
    loop = asyncio.get_running_loop()
    return [await loop.sock_recv(sock, 2048) for _ in range(packets)]


async def test_answer_play_snoop_bridge_and_hang_up_a_real_call(
    client: tuple[AriClient, Events], settings: Settings, speech: Path
) -> None:
    ari, events = client
    caller = asyncio.create_task(sipp.call(settings, "183", say=speech, hold=60))
    start = await events.wait(ev.StasisStart)
    channel = start.channel.id
    assert start.channel.caller.number == "05321234567"
    assert start.channel.dialplan.exten == "183"

    await ari.channels.answer(channel)
    playback = await ari.channels.play(channel, "sound:hello-world", playback_id=f"{channel}-hello")
    finished = await events.wait(ev.PlaybackFinished, lambda e: e.playback.id == playback.id)
    assert finished.playback.state == "done"

    # The caller's voice, as the transcripts will hear it: snoop (spy in) -> bridge -> externalMedia.
    rtp = rtp_receiver()
    snoop = await ari.channels.snoop(channel, spy="in", app_args="snoop")
    await events.wait(ev.StasisStart, lambda e: e.channel.id == snoop.id and e.args == ["snoop"])
    host, port = rtp.getsockname()
    media = await ari.channels.external_media(external_host=f"{host}:{port}", format="slin16")
    await events.wait(ev.StasisStart, lambda e: e.channel.id == media.id)
    tap = await ari.bridges.create(type="mixing")
    await ari.bridges.add_channel(tap.id, [snoop.id, media.id])
    packets = await asyncio.wait_for(receive_rtp(rtp, 50), 20)
    rtp.close()
    assert {p[1] & 0x7F for p in packets} == {118}  # slin16's dynamic payload type
    samples = [struct.unpack(f">{(len(p) - 12) // 2}h", p[12:]) for p in packets]
    assert all(len(s) == 320 for s in samples)  # 20 ms at 16 kHz, big-endian 16-bit PCM
    assert max(max(abs(x) for x in s) for s in samples) > 1000  # speech, not silence

    # Bridge the caller into a holding bridge of its own, then end the call from our side.
    holding = await ari.bridges.create(type="holding")
    await ari.bridges.add_channel(holding.id, channel)
    entered = await events.wait(ev.ChannelEnteredBridge, lambda e: e.bridge.id == holding.id)
    assert entered.channel is not None and entered.channel.id == channel
    await ari.channels.hangup(channel)
    await events.wait(ev.StasisEnd, lambda e: e.channel.id == channel)
    await ari.channels.hangup(channel)  # already gone: not an error

    for extra in (snoop.id, media.id):
        await ari.channels.hangup(extra)
    for bridge in (tap.id, holding.id):
        await ari.bridges.destroy(bridge)
    result = await asyncio.wait_for(caller, 30)
    assert result.ok and result.hung_up_by == "remote", result.errors
    assert await ari.channels.list() == []
    assert [b.id for b in await ari.bridges.list()] == []


async def test_a_cut_connection_reconnects_and_re_adopts_the_live_call(settings: Settings) -> None:
    proxy = TcpProxy(settings.ari.host, settings.ari.port)
    await proxy.start()
    events = Events()
    through_proxy = f"http://127.0.0.1:{proxy.port}"
    client = AriClient(
        through_proxy, settings.ari.user, asterisk.ari_password(settings), settings.ari.app,
        heartbeat=2.0, backoff_base=0.05, backoff_max=0.5,
    )  # fmt: skip
    caller: asyncio.Task[sipp.SippResult] | None = None
    async with client:
        client.on_event(events)
        runner = asyncio.create_task(client.run())
        await client.wait_connected(timeout=10)
        caller = asyncio.create_task(sipp.call(settings, "183", hold=60))
        channel = (await events.wait(ev.StasisStart)).channel.id
        await client.channels.answer(channel)

        assert proxy.cut() >= 1
        lost = await events.wait(ev.Disconnected)
        back = await events.wait(ev.Connected, lambda e: e.generation == lost.generation + 1)
        assert [c.id for c in back.channels] == [channel]  # the resync hands the live call back

        # The call goes on under the new connection: play to it, then end it.
        playback = await client.channels.play(channel, "sound:beep", playback_id=f"{channel}-after")
        await events.wait(ev.PlaybackFinished, lambda e: e.playback.id == playback.id)
        await client.channels.hangup(channel)
        await events.wait(ev.StasisEnd, lambda e: e.channel.id == channel)
    await runner
    await proxy.close()
    result = await asyncio.wait_for(caller, 30)
    assert result.ok and result.hung_up_by == "remote", result.errors
