"""RTP packets (RFC 3550) as Asterisk's externalMedia channel sends them, and the slin16 payload.

Parsing takes what receiving needs: the fixed header, the CSRC list, a header extension (skipped
by its length, so that one never shifts the payload) and padding (removed by its count byte).
Anything malformed is an :class:`RtpError`, never an IndexError or struct.error, so a receiver
can count bad datagrams with one ``except``.
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass

VERSION = 2
HEADER_SIZE = 12

_HEADER = struct.Struct("!BBHII")
_EXTENSION = struct.Struct("!HH")  # profile-defined id, length in 32-bit words


class RtpError(ValueError):
    """A datagram that is not a well-formed RTP packet."""


def is_rtcp(data: bytes) -> bool:
    """RTCP multiplexed onto the RTP port (RFC 5761): packet types 192-223 sit where RTP has M+PT."""
    return len(data) >= 2 and 192 <= data[1] <= 223


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpPacket:
    version: int = VERSION
    padding: int = 0  # padding octets that followed the payload, count byte included (0: none)
    marker: bool = False
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    csrcs: tuple[int, ...] = ()
    payload: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        size = len(data)
        if size < HEADER_SIZE:
            raise RtpError(f"{size} bytes is shorter than the {HEADER_SIZE}-byte RTP header")
        first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
        version = first >> 6
        if version != VERSION:
            raise RtpError(f"RTP version {version}, expected {VERSION}")
        offset = HEADER_SIZE
        csrcs: tuple[int, ...] = ()
        count = first & 0x0F
        if count:
            offset += 4 * count
            if offset > size:
                raise RtpError(f"{count} CSRCs need {offset} bytes, the packet has {size}")
            csrcs = struct.unpack_from(f"!{count}I", data, HEADER_SIZE)
        if first & 0x10:
            if offset + 4 > size:
                raise RtpError("the header extension's own header is beyond the packet")
            _profile, words = _EXTENSION.unpack_from(data, offset)
            offset += 4 + 4 * words
            if offset > size:
                raise RtpError(f"a header extension of {words} words runs beyond the packet")
        end = size
        padding = 0
        if first & 0x20:
            padding = data[-1]
            if padding == 0:
                raise RtpError("padding bit set but the padding count is 0")
            end -= padding
            if end < offset:
                raise RtpError(f"{padding} bytes of padding run into the header")
        return cls(
            version=version,
            padding=padding,
            marker=bool(second & 0x80),
            payload_type=second & 0x7F,
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            csrcs=csrcs,
            payload=data[offset:end],
        )

    def serialize(self) -> bytes:
        """The packet on the wire; padding, if any, is zeros ending in the count byte."""
        if not 0 <= self.version <= 3:
            raise ValueError(f"version {self.version} does not fit 2 bits")
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload type {self.payload_type} does not fit 7 bits")
        if len(self.csrcs) > 15:
            raise ValueError(f"{len(self.csrcs)} CSRCs, at most 15 fit")
        if not 0 <= self.padding <= 255:
            raise ValueError(f"padding of {self.padding} bytes does not fit its count byte")
        if not 0 <= self.sequence <= 0xFFFF or not 0 <= self.timestamp <= 0xFFFFFFFF:
            raise ValueError("sequence or timestamp out of range")
        first = self.version << 6 | (0x20 if self.padding else 0) | len(self.csrcs)
        second = (0x80 if self.marker else 0) | self.payload_type
        parts = [_HEADER.pack(first, second, self.sequence, self.timestamp, self.ssrc)]
        if self.csrcs:
            parts.append(struct.pack(f"!{len(self.csrcs)}I", *self.csrcs))
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)


def slin16_payload_to_pcm(payload: bytes) -> bytes:
    """slin16's big-endian samples as the little-endian PCM engines take (an odd last byte dropped).

    Swapping each sample's two bytes is the same on any host, so no ``sys.byteorder`` test.
    """
    if len(payload) & 1:
        payload = payload[:-1]
    samples = array("h", payload)
    samples.byteswap()
    return samples.tobytes()
