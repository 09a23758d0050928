"""One RTP stream put back in order, its losses turned into silence so that time stays right.

Word times are measured from a stream's first frame, so every emitted sample must stand for the
RTP time it was sent at. :class:`ReorderBuffer` therefore places audio by RTP *timestamp*: before
each packet it emits, any timestamp gap since the end of the previous one becomes silence of that
length (a lost packet, or a sender that paused), capped at ``max_gap_samples`` (a longer gap is a
discontinuity, not a pause worth replaying in full).

Rules, by sequence number relative to the next one due (16-bit, wrap-around safe):

- the next one due is emitted at once, with whatever held packets follow it: no added delay
  while nothing is missing;
- a packet ahead of it is held; a missing packet is waited for until ``depth`` later packets are
  held, then counted lost and skipped (the silence comes from the timestamps, as above);
- a packet that arrives behind a later one and is still in time is put in place (``reordered``);
- a packet behind what was emitted is dropped: ``duplicate`` if that number was emitted,
  ``late`` if it had been given up as lost (or is too old to tell);
- a new SSRC, or a sequence number more than ``MAX_JUMP`` ahead of or behind the one due, is a
  new stream: what is held is emitted, and the stream restarts there (``resets``) without any
  silence, since RTP says nothing about how long the break lasted.

Cost per packet: a few integer operations and, off the in-order path, one small dict (at most
``depth`` packets). Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rtp import RtpPacket, slin16_payload_to_pcm

MAX_JUMP = 100  # missing sequence numbers (2 s of 20 ms packets) beyond which it is a new stream
_WINDOW = (1 << 64) - 1  # how far back duplicates are told from late packets


@dataclass(slots=True)
class Stats:
    received: int = 0  # every packet pushed
    lost: int = 0  # sequence numbers given up on (a later arrival also counts as late)
    reordered: int = 0  # arrived behind a later packet, still put in place
    duplicate: int = 0
    late: int = 0  # arrived after being given up on
    resets: int = 0  # new SSRC or sequence jump


def _seq_delta(a: int, b: int) -> int:
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


class ReorderBuffer:
    __slots__ = ("_depth", "_held", "_max_gap", "_next_seq", "_next_ts", "_seen", "_ssrc", "_top", "stats")

    def __init__(self, depth: int = 3, max_gap_samples: int = 16000) -> None:
        if depth < 0 or max_gap_samples < 0:
            raise ValueError("depth and max_gap_samples must be 0 or more")
        self._depth = depth
        self._max_gap = max_gap_samples
        self._held: dict[int, RtpPacket] = {}
        self._ssrc: int | None = None
        self._next_seq = 0  # the sequence number due next
        self._top = 0  # the highest sequence number accepted
        self._next_ts: int | None = None  # RTP time right after the last sample emitted
        self._seen = 0  # bit i set: sequence number next_seq - 1 - i was emitted (not lost)
        self.stats = Stats()

    def push(self, packet: RtpPacket) -> list[bytes]:
        """Take one packet; the PCM chunks (little-endian) now ready, in stream order."""
        stats = self.stats
        stats.received += 1
        out: list[bytes] = []
        if packet.ssrc != self._ssrc:
            self._restart(packet, out)
        seq = packet.sequence
        delta = _seq_delta(seq, self._next_seq)
        if delta < 0:
            if delta >= -MAX_JUMP:
                back = -delta - 1
                if back < 64 and self._seen >> back & 1:
                    stats.duplicate += 1
                else:
                    stats.late += 1
                return out
            self._restart(packet, out)
        elif delta > MAX_JUMP:
            self._restart(packet, out)
        held = self._held
        if not held and seq == self._next_seq:
            self._top = seq
            self._emit(packet, out)
            return out
        if seq in held:
            stats.duplicate += 1
            return out
        if _seq_delta(seq, self._top) < 0:
            stats.reordered += 1
        else:
            self._top = seq
        held[seq] = packet
        self._drain(out)
        while held and len(held) >= self._depth:
            self._skip_to_oldest()
            self._drain(out)
        return out

    def flush(self) -> list[bytes]:
        """The stream ended: everything held, in order, gaps filled as usual."""
        out: list[bytes] = []
        self._flush(out)
        return out

    def _flush(self, out: list[bytes]) -> None:
        while self._held:
            self._skip_to_oldest()
            self._drain(out)

    def _restart(self, packet: RtpPacket, out: list[bytes]) -> None:
        if self._ssrc is not None:
            self._flush(out)
            self.stats.resets += 1
        self._ssrc = packet.ssrc
        self._next_seq = packet.sequence
        self._top = (packet.sequence - 1) & 0xFFFF
        self._next_ts = None
        self._seen = 0

    def _drain(self, out: list[bytes]) -> None:
        held = self._held
        while (packet := held.pop(self._next_seq, None)) is not None:
            self._emit(packet, out)

    def _skip_to_oldest(self) -> None:
        next_seq = self._next_seq
        gap = min(_seq_delta(seq, next_seq) for seq in self._held)
        self.stats.lost += gap
        self._seen = (self._seen << gap) & _WINDOW
        self._next_seq = (next_seq + gap) & 0xFFFF

    def _emit(self, packet: RtpPacket, out: list[bytes]) -> None:
        timestamp = packet.timestamp
        if self._next_ts is not None:
            gap = ((timestamp - self._next_ts + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            if gap > 0:
                samples = min(gap, self._max_gap)
                if samples:
                    out.append(bytes(2 * samples))
        pcm = slin16_payload_to_pcm(packet.payload)
        if pcm:
            out.append(pcm)
        self._next_ts = (timestamp + len(pcm) // 2) & 0xFFFFFFFF
        self._next_seq = (packet.sequence + 1) & 0xFFFF
        self._seen = (self._seen << 1 | 1) & _WINDOW
