"""PortPool and RtpReceiver over real loopback UDP sockets."""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import Iterator

import pytest

from transcripts.jitter import ReorderBuffer
from transcripts.media import PortPool, PortsExhausted
from transcripts.rtp import RtpPacket

HOST = "127.0.0.1"
SAMPLES = 320


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive UDP ports free on loopback (below the ephemeral range)."""
    for _ in range(200):
        start = random.randrange(20000, 32000 - count)
        probes: list[socket.socket] = []
        try:
            for port in range(start, start + count):
                probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                probes.append(probe)
                probe.bind((HOST, port))
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
        return start
    raise RuntimeError("no free port range")


@pytest.fixture
def sender() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    yield sock
    sock.close()


@pytest.fixture
def other_sender() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    yield sock
    sock.close()


def rtp(seq: int, value: int, ssrc: int = 0x5EED) -> bytes:
    payload = struct.pack(f">{SAMPLES}h", *([value] * SAMPLES))
    return RtpPacket(
        payload_type=118, sequence=seq, timestamp=seq * SAMPLES, ssrc=ssrc, payload=payload
    ).serialize()


def pcm(value: int, samples: int = SAMPLES) -> bytes:
    return struct.pack(f"<{samples}h", *([value] * samples))


class Audio:
    """Collects on_audio calls; ``next()`` awaits the next chunk."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def __call__(self, chunk: bytes) -> None:
        self.queue.put_nowait(chunk)

    async def next(self) -> bytes:
        return await asyncio.wait_for(self.queue.get(), 5)


async def test_receiver_hands_over_decoded_audio(sender: socket.socket) -> None:
    port = free_ports(1)
    pool = PortPool(HOST, port, port)
    audio = Audio()
    receiver = await pool.lease(audio)
    assert receiver.address == (HOST, port)
    sender.sendto(rtp(1, 0x0102), receiver.address)
    sender.sendto(rtp(2, -3), receiver.address)
    assert await audio.next() == pcm(0x0102)
    assert await audio.next() == pcm(-3)
    assert receiver.peer == sender.getsockname()
    assert receiver.stats.received == 2
    receiver.close()
    await receiver.wait_closed()


async def test_receiver_latches_on_the_first_sender(
    sender: socket.socket, other_sender: socket.socket
) -> None:
    port = free_ports(1)
    receiver = await PortPool(HOST, port, port).lease(audio := Audio())
    sender.sendto(rtp(1, 10), receiver.address)
    assert await audio.next() == pcm(10)
    # Another address sends the next packet first: it must not be heard.
    other_sender.sendto(rtp(2, 666), receiver.address)
    other_sender.sendto(rtp(2, 666, ssrc=0xBAD), receiver.address)
    sender.sendto(rtp(2, 20), receiver.address)
    assert await audio.next() == pcm(20)
    assert receiver.foreign == 2
    assert receiver.stats.resets == 0
    receiver.close()
    await receiver.wait_closed()
    assert audio.queue.empty()


async def test_bad_datagrams_are_counted_and_do_not_latch(
    sender: socket.socket, other_sender: socket.socket
) -> None:
    port = free_ports(1)
    receiver = await PortPool(HOST, port, port).lease(audio := Audio())
    other_sender.sendto(b"\x00" * 5, receiver.address)  # not RTP: must not claim the port
    sender.sendto(bytes.fromhex("40 76 0001 00000000 00000000"), receiver.address)  # version 1
    sender.sendto(bytes.fromhex("80c8 0006 00005eed") + bytes(20), receiver.address)  # RTCP sender report
    sender.sendto(rtp(1, 7), receiver.address)
    assert await audio.next() == pcm(7)
    assert receiver.bad == 3
    assert receiver.peer == sender.getsockname()
    receiver.close()
    await receiver.wait_closed()


async def test_receiver_reorders_through_its_buffer(sender: socket.socket) -> None:
    port = free_ports(1)
    receiver = await PortPool(HOST, port, port).lease(audio := Audio(), buffer=ReorderBuffer(depth=2))
    for seq in (1, 3, 2):
        sender.sendto(rtp(seq, seq), receiver.address)
    assert [await audio.next() for _ in range(3)] == [pcm(1), pcm(2), pcm(3)]
    assert receiver.stats.reordered == 1
    receiver.close()
    await receiver.wait_closed()


class CountingBuffer(ReorderBuffer):
    """A ReorderBuffer that tells when it has taken ``count`` packets."""

    __slots__ = ("count", "taken")

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.taken = asyncio.Event()

    def push(self, packet: RtpPacket) -> list[bytes]:
        out = super().push(packet)
        if self.stats.received >= self.count:
            self.taken.set()
        return out


async def test_close_flushes_held_audio_and_frees_the_port(sender: socket.socket) -> None:
    port = free_ports(1)
    pool = PortPool(HOST, port, port)
    buffer = CountingBuffer(3)
    receiver = await pool.lease(audio := Audio(), buffer=buffer)
    sender.sendto(rtp(1, 1), receiver.address)
    sender.sendto(rtp(3, 3), receiver.address)  # held, waiting for 2
    sender.sendto(rtp(5, 5), receiver.address)  # held
    await asyncio.wait_for(buffer.taken.wait(), 5)
    assert await audio.next() == pcm(1)
    assert audio.queue.empty()
    receiver.close()
    flushed = [audio.queue.get_nowait() for _ in range(audio.queue.qsize())]
    assert flushed == [pcm(0), pcm(3), pcm(0), pcm(5)]
    await receiver.wait_closed()
    assert pool.leased == 0
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind((HOST, port))  # really released
    probe.close()


async def test_pool_exhaustion_and_reuse_after_close() -> None:
    start = free_ports(2)
    pool = PortPool(HOST, start, start + 1)
    first = await pool.lease(Audio())
    second = await pool.lease(Audio())
    assert {first.port, second.port} == {start, start + 1}
    assert pool.leased == 2
    with pytest.raises(PortsExhausted):
        await pool.lease(Audio())
    first.close()
    await first.wait_closed()
    assert pool.leased == 1
    third = await pool.lease(Audio())
    assert third.port == first.port
    for receiver in (second, third):
        receiver.close()
        await receiver.wait_closed()
    assert pool.leased == 0


async def test_ports_go_round_robin() -> None:
    start = free_ports(3)
    pool = PortPool(HOST, start, start + 2)
    first = await pool.lease(Audio())
    first.close()
    await first.wait_closed()
    second = await pool.lease(Audio())
    assert second.port == start + 1  # not the port just given back
    second.close()
    await second.wait_closed()


async def test_port_bound_by_another_program_is_skipped() -> None:
    start = free_ports(2)
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind((HOST, start))
    try:
        pool = PortPool(HOST, start, start + 1)
        receiver = await pool.lease(Audio())
        assert receiver.port == start + 1
        with pytest.raises(PortsExhausted, match="1 leased, 1 held by other programs"):
            await pool.lease(Audio())
        assert pool.leased == 1
        receiver.close()
        await receiver.wait_closed()
    finally:
        squatter.close()


async def test_other_bind_errors_are_raised() -> None:
    pool = PortPool("192.0.2.1", 40000, 40001)  # TEST-NET: not an address of this machine
    with pytest.raises(OSError):
        await pool.lease(Audio())
    assert pool.leased == 0


@pytest.mark.parametrize(("start", "end"), [(0, 10), (10, 9), (65535, 65536)])
def test_bad_port_range(start: int, end: int) -> None:
    with pytest.raises(ValueError):
        PortPool(HOST, start, end)
