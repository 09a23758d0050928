"""ReorderBuffer: order, loss as silence of the right length, duplicates, late packets, wrap, resets."""

from __future__ import annotations

import struct

import pytest

from transcripts.jitter import ReorderBuffer, Stats
from transcripts.rtp import RtpPacket

SAMPLES = 320  # 20 ms at 16 kHz


def packet(seq: int, ts: int | None = None, *, ssrc: int = 0x1111, samples: int = SAMPLES) -> RtpPacket:
    """A packet whose every sample is ``seq % 30000 + 1`` (never 0, so never mistaken for silence)."""
    value = seq % 30000 + 1
    timestamp = (seq * SAMPLES if ts is None else ts) & 0xFFFFFFFF
    payload = struct.pack(f">{samples}h", *([value] * samples))
    return RtpPacket(payload_type=118, sequence=seq, timestamp=timestamp, ssrc=ssrc, payload=payload)


def audio(seq: int, samples: int = SAMPLES) -> tuple[int, int]:
    return (seq % 30000 + 1, samples)


def silence(samples: int) -> tuple[int, int]:
    return (0, samples)


def describe(chunks: list[bytes]) -> list[tuple[int, int]]:
    """Each chunk as (sample value, sample count); every chunk must be one value throughout."""
    out = []
    for chunk in chunks:
        values = struct.unpack(f"<{len(chunk) // 2}h", chunk)
        assert len(chunk) % 2 == 0 and len(set(values)) == 1, "a chunk mixes packets"
        out.append((values[0], len(values)))
    return out


def push_all(buffer: ReorderBuffer, *packets: RtpPacket) -> list[tuple[int, int]]:
    out: list[bytes] = []
    for p in packets:
        out += buffer.push(p)
    return describe(out)


def test_in_order_packets_come_out_at_once_as_little_endian() -> None:
    buffer = ReorderBuffer()
    for seq in range(10, 15):
        p = packet(seq)
        chunks = buffer.push(p)
        assert chunks == [struct.pack(f"<{SAMPLES}h", *([seq + 1] * SAMPLES))]
    assert buffer.stats == Stats(received=5)
    assert buffer.flush() == []


def test_reordered_within_depth_is_put_in_place() -> None:
    buffer = ReorderBuffer(depth=3)
    assert push_all(buffer, packet(1)) == [audio(1)]
    assert push_all(buffer, packet(3)) == []
    assert push_all(buffer, packet(2)) == [audio(2), audio(3)]
    assert push_all(buffer, packet(4)) == [audio(4)]
    assert buffer.stats == Stats(received=4, reordered=1)


def test_reversed_run_within_depth() -> None:
    buffer = ReorderBuffer(depth=3)
    out = push_all(buffer, packet(1), packet(4), packet(3), packet(2), packet(5))
    assert out == [audio(1), audio(2), audio(3), audio(4), audio(5)]
    assert buffer.stats == Stats(received=5, reordered=2)


def test_lost_packet_waits_for_depth_then_becomes_silence_of_its_duration() -> None:
    buffer = ReorderBuffer(depth=3)
    assert push_all(buffer, packet(1)) == [audio(1)]
    assert push_all(buffer, packet(3)) == []
    assert push_all(buffer, packet(4)) == []
    # The third packet after the gap: packet 2 is given up.
    assert push_all(buffer, packet(5)) == [silence(SAMPLES), audio(3), audio(4), audio(5)]
    assert push_all(buffer, packet(6)) == [audio(6)]
    assert buffer.stats == Stats(received=5, lost=1)


def test_several_lost_in_a_row_keep_time_aligned() -> None:
    buffer = ReorderBuffer(depth=2)
    out = push_all(buffer, packet(1), packet(5), packet(6), packet(7))
    assert out == [audio(1), silence(3 * SAMPLES), audio(5), audio(6), audio(7)]
    assert sum(n for _, n in out) == 7 * SAMPLES  # from packet 1's start to packet 7's end
    assert buffer.stats.lost == 3


def test_silence_follows_timestamps_not_a_fixed_packet_size() -> None:
    # 10 ms packets: the lost one is 160 samples of silence.
    buffer = ReorderBuffer(depth=1)
    out = push_all(buffer, packet(1, 160, samples=160), packet(3, 480, samples=160))
    assert out == [audio(1, 160), silence(160), audio(3, 160)]


def test_depth_zero_never_waits() -> None:
    buffer = ReorderBuffer(depth=0)
    assert push_all(buffer, packet(1), packet(3)) == [audio(1), silence(SAMPLES), audio(3)]
    assert push_all(buffer, packet(2)) == []
    assert buffer.stats == Stats(received=3, lost=1, late=1)


def test_packet_arriving_after_being_given_up_is_late() -> None:
    buffer = ReorderBuffer(depth=3)
    push_all(buffer, packet(1), packet(3), packet(4), packet(5))
    assert push_all(buffer, packet(2)) == []
    assert push_all(buffer, packet(6)) == [audio(6)]
    assert buffer.stats == Stats(received=6, lost=1, late=1)


def test_duplicates_are_dropped_whether_emitted_or_held() -> None:
    buffer = ReorderBuffer(depth=3)
    assert push_all(buffer, packet(1), packet(1)) == [audio(1)]  # emitted already
    assert push_all(buffer, packet(3), packet(3)) == []  # held
    assert push_all(buffer, packet(2)) == [audio(2), audio(3)]
    assert push_all(buffer, packet(2), packet(1), packet(4)) == [audio(4)]
    assert buffer.stats == Stats(received=8, reordered=1, duplicate=4)


def test_duplicate_is_told_from_late_across_a_loss() -> None:
    buffer = ReorderBuffer(depth=1)
    push_all(buffer, packet(1), packet(3), packet(4))  # 2 lost
    push_all(buffer, packet(1), packet(2), packet(3))
    assert buffer.stats == Stats(received=6, lost=1, duplicate=2, late=1)


def after_wrap(seq: int) -> RtpPacket:
    """Packet ``seq`` of a stream whose sequence numbers wrapped once (timestamps carry on)."""
    return packet(seq, (seq + 65536) * SAMPLES)


def test_sequence_wraps_from_65535_to_0() -> None:
    buffer = ReorderBuffer(depth=3)
    out = push_all(buffer, packet(65534), after_wrap(0), packet(65535), after_wrap(1))
    assert out == [audio(65534), audio(65535), audio(0), audio(1)]
    assert buffer.stats == Stats(received=4, reordered=1)


def test_loss_across_the_sequence_wrap() -> None:
    buffer = ReorderBuffer(depth=3)
    out = push_all(buffer, packet(65534), after_wrap(0), after_wrap(1), after_wrap(2))
    assert out == [audio(65534), silence(SAMPLES), audio(0), audio(1), audio(2)]
    assert push_all(buffer, packet(65535)) == []
    assert buffer.stats == Stats(received=5, lost=1, late=1)


def test_timestamp_wrap_is_neither_a_gap_nor_a_reset() -> None:
    buffer = ReorderBuffer()
    top = 2**32
    out = push_all(
        buffer, packet(7, top - 2 * SAMPLES), packet(8, top - SAMPLES), packet(9, 0), packet(10, SAMPLES)
    )
    assert out == [audio(7), audio(8), audio(9), audio(10)]
    assert buffer.stats.resets == 0


def test_loss_across_the_timestamp_wrap() -> None:
    buffer = ReorderBuffer(depth=1)
    out = push_all(buffer, packet(7, 2**32 - SAMPLES), packet(9, SAMPLES))  # 8 (ts 0) lost
    assert out == [audio(7), silence(SAMPLES), audio(9)]


def test_timestamp_gap_without_loss_is_filled() -> None:
    # A sender that paused for 100 ms (no sequence gap): the pause is kept as silence.
    buffer = ReorderBuffer()
    out = push_all(buffer, packet(1, 1000), packet(2, 1000 + SAMPLES + 1600))
    assert out == [audio(1), silence(1600), audio(2)]
    assert buffer.stats.lost == 0


def test_gap_longer_than_max_gap_is_filled_with_at_most_that() -> None:
    buffer = ReorderBuffer(max_gap_samples=1000)
    out = push_all(buffer, packet(1, 0), packet(2, SAMPLES + 50_000), packet(3, 2 * SAMPLES + 50_000))
    assert out == [audio(1), silence(1000), audio(2), audio(3)]


def test_timestamp_going_back_inserts_nothing() -> None:
    buffer = ReorderBuffer()
    assert push_all(buffer, packet(1, 10_000), packet(2, 5_000), packet(3, 5_000 + SAMPLES)) == [
        audio(1),
        audio(2),
        audio(3),
    ]


def test_new_ssrc_resets_without_silence() -> None:
    buffer = ReorderBuffer()
    push_all(buffer, packet(1, ssrc=0xA), packet(2, ssrc=0xA))
    out = push_all(buffer, packet(500, 9_999_999, ssrc=0xB), packet(501, 9_999_999 + SAMPLES, ssrc=0xB))
    assert out == [audio(500), audio(501)]
    assert buffer.stats == Stats(received=4, resets=1)


def test_new_ssrc_first_emits_what_was_held() -> None:
    buffer = ReorderBuffer(depth=3)
    push_all(buffer, packet(1, ssrc=0xA), packet(3, ssrc=0xA))
    out = push_all(buffer, packet(40, 123, ssrc=0xB))
    assert out == [silence(SAMPLES), audio(3), audio(40)]
    assert buffer.stats == Stats(received=3, lost=1, resets=1)


def test_jump_over_more_than_100_missing_resets_without_silence() -> None:
    buffer = ReorderBuffer()
    out = push_all(buffer, packet(1), packet(2), packet(104), packet(105))
    assert out == [audio(1), audio(2), audio(104), audio(105)]
    assert buffer.stats == Stats(received=4, resets=1)


def test_100_missing_is_still_loss() -> None:
    buffer = ReorderBuffer(depth=1, max_gap_samples=10**6)
    out = push_all(buffer, packet(1), packet(102))
    assert out == [audio(1), silence(100 * SAMPLES), audio(102)]
    assert buffer.stats == Stats(received=2, lost=100)


def test_jump_backwards_resets() -> None:
    buffer = ReorderBuffer()
    out = push_all(buffer, packet(1000), packet(1001), packet(800), packet(801))
    assert out == [audio(1000), audio(1001), audio(800), audio(801)]
    assert buffer.stats == Stats(received=4, resets=1)


def test_flush_emits_held_packets_with_their_gaps() -> None:
    buffer = ReorderBuffer(depth=3)
    assert push_all(buffer, packet(1), packet(3), packet(5)) == [audio(1)]
    assert describe(buffer.flush()) == [silence(SAMPLES), audio(3), silence(SAMPLES), audio(5)]
    assert buffer.stats.lost == 2
    assert buffer.flush() == []
    # The stream goes on after a flush.
    assert push_all(buffer, packet(6)) == [audio(6)]


def test_odd_payload_keeps_whole_samples_only() -> None:
    buffer = ReorderBuffer()
    p = RtpPacket(payload_type=118, sequence=1, timestamp=0, ssrc=1, payload=b"\x00\x05\x07")
    assert buffer.push(p) == [b"\x05\x00"]


@pytest.mark.parametrize(("depth", "gap"), [(-1, 0), (0, -1)])
def test_bad_settings(depth: int, gap: int) -> None:
    with pytest.raises(ValueError):
        ReorderBuffer(depth, gap)
