"""The SIPp desk phone a page calls: ARI originates to agent 9002's phone, plays to it, and the
phone answers, listens and presses "1" (a police desk accepting) or never presses a key (an
answering machine). Only the session Asterisk is used, under an app name of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import pytest

from ari import AriClient
from ari import events as ev
from hotline import asterisk
from hotline.settings import Settings
from tests.harness import sipp

E = TypeVar("E", bound=ev.Event)
APP = "desk-phone-test"  # not the hotline's app: nothing else reacts to these channels


class Expect:
    """Every delivered event, and futures for events that match (earlier ones included)."""

    def __init__(self) -> None:
        self.seen: list[ev.Event] = []
        self._waiting: list[tuple[Callable[[ev.Event], bool], asyncio.Future[ev.Event]]] = []

    async def __call__(self, event: ev.Event) -> None:
        self.seen.append(event)
        for matches, future in self._waiting:
            if not future.done() and matches(event):
                future.set_result(event)

    def event(self, kind: type[E], where: Callable[[E], bool] = lambda _: True) -> asyncio.Future[E]:
        def matches(event: ev.Event) -> bool:
            return isinstance(event, kind) and where(event)

        future: asyncio.Future[ev.Event] = asyncio.get_running_loop().create_future()
        earlier = next((e for e in self.seen if matches(e)), None)
        if earlier is not None:
            future.set_result(earlier)
        else:
            self._waiting.append((matches, future))
        return future  # type: ignore[return-value]  # only events of ``kind`` resolve it


@pytest.fixture
async def ari(
    hotline_settings: Settings, asterisk_instance: asterisk.Instance
) -> AsyncIterator[tuple[AriClient, Expect]]:
    expect = Expect()
    settings = hotline_settings
    client = AriClient(settings.ari.url, settings.ari.user, asterisk.ari_password(settings), APP)
    async with client:
        client.on_event(expect)
        runner = asyncio.create_task(client.run())
        await client.wait_connected(timeout=10)
        yield client, expect
    await runner


async def page(client: AriClient, expect: Expect) -> str:
    """Ring agent 9002's phone; once it answers (StasisStart: originate enters the app on answer),
    play a prompt to it and return the channel id once the prompt has been played in full."""
    channel = await client.channels.originate("PJSIP/agent-9002", app=APP, timeout=15)
    await asyncio.wait_for(expect.event(ev.StasisStart, lambda e: e.channel.id == channel.id), 20)
    target = f"channel:{channel.id}"
    started = expect.event(ev.PlaybackStarted, lambda e: e.playback.target_uri == target)
    finished = expect.event(ev.PlaybackFinished, lambda e: e.playback.target_uri == target)
    playback = await client.channels.play(channel.id, "sound:hello-world")
    assert (await asyncio.wait_for(started, 10)).playback.id == playback.id
    done = await asyncio.wait_for(finished, 10)
    assert done.playback.id == playback.id and done.playback.state == "done"
    return channel.id


async def test_a_desk_hears_the_page_and_presses_1(
    ari: tuple[AriClient, Expect], second_phone_port: int
) -> None:
    client, expect = ari
    async with sipp.phone(port=second_phone_port, keys="1", keys_after_ms=1500) as desk:
        # Registered before the call: the key may come while the prompt still plays.
        key = expect.event(ev.ChannelDtmfReceived)
        channel = await page(client, expect)
        pressed = await asyncio.wait_for(key, 10)
        assert pressed.channel.id == channel and pressed.digit == "1"

        ended = expect.event(ev.StasisEnd, lambda e: e.channel.id == channel)
        await client.channels.hangup(channel)
        await asyncio.wait_for(ended, 10)
        result = await desk.result(timeout=20)
    assert result.ok, result.errors
    assert "answered" in result.log and "pressed 1" in result.log
    assert [e.digit for e in expect.seen if isinstance(e, ev.ChannelDtmfReceived)] == ["1"]


async def test_an_answering_machine_listens_and_presses_nothing(
    ari: tuple[AriClient, Expect], second_phone_port: int
) -> None:
    client, expect = ari
    async with sipp.phone(port=second_phone_port) as machine:
        key = expect.event(ev.ChannelDtmfReceived)
        channel = await page(client, expect)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(key), 3)

        ended = expect.event(ev.ChannelDestroyed, lambda e: e.channel.id == channel)
        await client.channels.hangup(channel)
        await asyncio.wait_for(ended, 10)
        result = await machine.result(timeout=20)
    assert result.ok, result.errors
    assert "answered" in result.log and "pressed" not in result.log
    assert not key.done()


async def test_a_desk_presses_keys_in_order_and_a_page_may_hang_up_before_them(
    ari: tuple[AriClient, Expect], second_phone_port: int
) -> None:
    client, expect = ari
    async with sipp.phone(port=second_phone_port, keys="12", keys_after_ms=500) as desk:
        second = expect.event(ev.ChannelDtmfReceived, lambda e: e.digit == "2")
        channel = await page(client, expect)
        await asyncio.wait_for(second, 10)
        await client.channels.hangup(channel)
        result = await desk.result(timeout=20)
    assert result.ok, result.errors
    assert [e.digit for e in expect.seen if isinstance(e, ev.ChannelDtmfReceived)] == ["1", "2"]
    assert result.log.count("pressed") == 2

    # The page ends the call while the desk still listens: a clean end, not a failed SIPp run.
    async with sipp.phone(port=second_phone_port, keys="1", keys_after_ms=10_000) as desk:
        channel = await page(client, expect)
        await client.channels.hangup(channel)
        result = await desk.result(timeout=20)
    assert result.ok, result.errors
    assert "hung up before the last key" in result.log and "pressed" not in result.log
