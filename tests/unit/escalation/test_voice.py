"""Voice pages on the fake ARI server: the desk answers and hears the page, 1 accepts and 2
passes, a key is taken even before the spoken page is ready, a desk that says nothing
acknowledges nothing, and a desk that does not answer is a try to repeat."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from ari import AriClient
from ari.testing import FakeAri
from escalation.channels import Delivery, PageMessage
from escalation.voice import PREFIX, VoicePager


def message(page_id: str = "p1") -> PageMessage:
    return PageMessage(
        page_id=page_id,
        key=f"i1:1:desk:{page_id}",
        attempt=1,
        incident={"id": "i1"},
        text="Alo yüz seksen üç acil durum bildirimi.",
        language="tr",
        address="PJSIP/desk-police",
        ack_url="/ack#t",
        ack_code="1234",
    )


@dataclass
class Desk:
    fake: FakeAri
    pager: VoicePager
    outcomes: list[tuple[str, str]] = field(default_factory=list)
    spoken: asyncio.Event = field(default_factory=asyncio.Event)  # set: the synthesis is done
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, outcome: str) -> None:
        async with asyncio.timeout(5):
            while (message().page_id, outcome) not in self.outcomes:
                self.changed.clear()
                await self.changed.wait()

    def plays(self) -> list[str]:
        return [r.path for r in self.fake.requests if r.method == "POST" and r.path.endswith("/play")]


@pytest.fixture
async def desk() -> AsyncIterator[Desk]:
    async with FakeAri(username="hotline", password="pw") as fake:
        client = AriClient(fake.base_url, "hotline", "pw", "hotline", backoff_base=0.01, backoff_max=0.05)
        found: Desk

        async def speak(text: str, language: str) -> str:
            await found.spoken.wait()
            return f"sound:/sounds/page-{language}"

        async def outcome(page_id: str, what: str) -> None:
            found.outcomes.append((page_id, what))
            found.changed.set()

        found = Desk(fake, VoicePager(client, speak, outcome, plays=2, ring_timeout=5))
        found.spoken.set()
        async with client:
            client.on_event(found.pager.handle)
            runner = asyncio.create_task(client.run())
            await client.wait_connected(5)
            yield found
        await runner


async def test_the_desk_answers_hears_the_page_and_accepts_with_1(desk: Desk) -> None:
    delivery = await desk.pager.send(message())
    assert delivery == Delivery(True, detail="answered")
    channel = f"{PREFIX}p1-1"
    await desk.fake.wait_for(lambda: bool(desk.plays()))
    assert desk.plays() == [f"/ari/channels/{channel}/play"]
    await desk.fake.send_dtmf(channel, "1")
    await desk.until("accept")
    assert desk.outcomes == [("p1", "answered"), ("p1", "accept")]
    await desk.fake.wait_for(lambda: channel not in desk.fake.channels)  # we hung up: it is over


async def test_a_key_is_taken_before_the_spoken_page_is_ready_and_then_nothing_is_played(desk: Desk) -> None:
    desk.spoken.clear()  # the synthesis is slow
    desk.fake.auto_finish_playbacks = False
    assert (await desk.pager.send(message())).ok
    await desk.fake.send_dtmf(f"{PREFIX}p1-1", "2")
    await desk.until("pass")  # not held up behind the synthesis
    desk.spoken.set()
    await desk.fake.wait_for(lambda: f"{PREFIX}p1-1" not in desk.fake.channels)
    assert desk.plays() == []


async def test_a_desk_that_says_nothing_hears_the_page_each_time_and_acknowledges_nothing(desk: Desk) -> None:
    assert (await desk.pager.send(message())).ok
    await desk.until("no_key")
    await desk.fake.wait_for(lambda: f"{PREFIX}p1-1" not in desk.fake.channels)  # then hung up
    assert len(desk.plays()) == 2  # said ``plays`` times
    assert ("p1", "accept") not in desk.outcomes


async def test_a_desk_that_does_not_answer_is_a_try_to_repeat(desk: Desk) -> None:
    desk.fake.auto_dial_answer = False

    async def no_answer() -> None:
        await desk.fake.wait_for(lambda: f"{PREFIX}p1-1" in desk.fake.channels)
        channel = desk.fake.channels[f"{PREFIX}p1-1"]
        await desk.fake.wait_for(lambda: channel["state"] == "Ringing")
        await desk.fake.emit({"type": "Dial", "peer": channel, "dialstatus": "NOANSWER", "dialstring": ""})

    ringing = asyncio.create_task(no_answer())
    delivery = await desk.pager.send(message())
    await ringing
    assert delivery == Delivery(False, retry=True, detail="noanswer")
    assert desk.outcomes == [] and desk.plays() == []
