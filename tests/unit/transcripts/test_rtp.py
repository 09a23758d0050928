"""RTP parse/serialize against hand-built packets, byte for byte, and the slin16 payload decode."""

from __future__ import annotations

import struct

import pytest

from transcripts.rtp import RtpError, RtpPacket, is_rtcp, slin16_payload_to_pcm

# V=2, P=0, X=0, CC=0 | M=0, PT=118 | seq 0x1234 | ts 0x89abcdef | ssrc 0xdeadbeef
PLAIN = bytes.fromhex("80 76 1234 89abcdef deadbeef") + b"\x01\x02\x03\x04"


def test_parse_plain_header() -> None:
    packet = RtpPacket.parse(PLAIN)
    assert packet == RtpPacket(
        version=2,
        padding=0,
        marker=False,
        payload_type=118,
        sequence=0x1234,
        timestamp=0x89ABCDEF,
        ssrc=0xDEADBEEF,
        csrcs=(),
        payload=b"\x01\x02\x03\x04",
    )
    assert packet.serialize() == PLAIN


def test_marker_and_csrcs_round_trip() -> None:
    # CC=2, M=1 (0x80 | 118 = 0xf6)
    data = bytes.fromhex("82 f6 ffff 00000001 00000002 01020304 a0b0c0d0") + b"\xaa\xbb"
    packet = RtpPacket.parse(data)
    assert packet.marker is True
    assert packet.payload_type == 118
    assert packet.sequence == 0xFFFF
    assert packet.timestamp == 1
    assert packet.ssrc == 2
    assert packet.csrcs == (0x01020304, 0xA0B0C0D0)
    assert packet.payload == b"\xaa\xbb"
    assert packet.serialize() == data


def test_padding_is_removed_and_serialized_back() -> None:
    data = bytes.fromhex("a0 76 0001 00000140 00000007") + b"\x11\x22" + b"\x00\x00\x03"
    packet = RtpPacket.parse(data)
    assert packet.padding == 3
    assert packet.payload == b"\x11\x22"
    assert packet.serialize() == data


def test_padding_may_take_the_whole_payload() -> None:
    data = bytes.fromhex("a0 76 0001 00000140 00000007 00000004")
    packet = RtpPacket.parse(data)
    assert packet.payload == b""
    assert packet.padding == 4


def test_header_extension_is_skipped_by_its_length() -> None:
    # X=1: profile 0xbede, 2 words of extension data, then the payload.
    data = bytes.fromhex("90 76 0005 00000a00 0000000b bede 0002 1122334455667788") + b"\x01\x02"
    packet = RtpPacket.parse(data)
    assert packet.payload == b"\x01\x02"
    assert packet.sequence == 5
    assert packet.timestamp == 0xA00
    assert packet.ssrc == 0xB
    # The extension is not kept: serialize writes the header without it.
    assert packet.serialize() == bytes.fromhex("80 76 0005 00000a00 0000000b") + b"\x01\x02"


def test_everything_at_once() -> None:
    # P, X, CC=1, M: csrc, a 1-word extension, payload, 2 bytes of padding.
    data = (
        bytes.fromhex("b1 f6 fffe fffffec0 cafebabe 0badf00d")
        + bytes.fromhex("1000 0001 deadbeef")
        + b"\x12\x34\x56\x78"
        + b"\x00\x02"
    )
    packet = RtpPacket.parse(data)
    assert packet == RtpPacket(
        padding=2,
        marker=True,
        payload_type=118,
        sequence=0xFFFE,
        timestamp=0xFFFFFEC0,
        ssrc=0xCAFEBABE,
        csrcs=(0x0BADF00D,),
        payload=b"\x12\x34\x56\x78",
    )


def test_serialize_from_fields() -> None:
    packet = RtpPacket(
        payload_type=0, sequence=65535, timestamp=0xFFFFFFFF, ssrc=0, marker=True, payload=b"x"
    )
    assert packet.serialize() == bytes.fromhex("80 80 ffff ffffffff 00000000") + b"x"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter than the 12-byte"),
        (PLAIN[:11], "shorter than the 12-byte"),
        (bytes.fromhex("40 76 0001 00000000 00000000"), "version 1"),
        (bytes.fromhex("00 76 0001 00000000 00000000"), "version 0"),
        (bytes.fromhex("c0 76 0001 00000000 00000000"), "version 3"),
        # CC=2 but only one CSRC present
        (bytes.fromhex("82 76 0001 00000000 00000000 00000001"), "2 CSRCs need 20 bytes"),
        # X=1 but the extension's own header is cut short
        (bytes.fromhex("90 76 0001 00000000 00000000 bede"), "extension's own header"),
        # X=1 claiming 3 words, only 2 present
        (bytes.fromhex("90 76 0001 00000000 00000000 bede0003 00000000 00000000"), "3 words"),
        # P=1 with a count of 0
        (bytes.fromhex("a0 76 0001 00000000 00000000 1100"), "count is 0"),
        # P=1 with a count larger than the payload
        (bytes.fromhex("a0 76 0001 00000000 00000000 1105"), "5 bytes of padding"),
        # P=1 and no payload at all: the count byte is the SSRC's last
        (bytes.fromhex("a0 76 0001 00000000 000000ff"), "255 bytes of padding"),
        # P=1 where padding would eat into the extension
        (bytes.fromhex("b0 76 0001 00000000 00000000 bede0000 02"), "2 bytes of padding"),
    ],
)
def test_malformed_packets_raise_rtp_error(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError, match=reason):
        RtpPacket.parse(data)


def test_rtp_error_is_a_value_error() -> None:
    assert issubclass(RtpError, ValueError)


@pytest.mark.parametrize(
    "fields",
    [
        {"payload_type": 128},
        {"csrcs": tuple(range(16))},
        {"padding": 256},
        {"sequence": 65536},
        {"timestamp": -1},
        {"version": 4},
    ],
)
def test_serialize_refuses_fields_that_do_not_fit(fields: dict[str, object]) -> None:
    base: dict[str, object] = {"payload_type": 118, "sequence": 1, "timestamp": 1, "ssrc": 1}
    with pytest.raises(ValueError):
        RtpPacket(**(base | fields)).serialize()  # type: ignore[arg-type]


def test_is_rtcp() -> None:
    assert is_rtcp(bytes.fromhex("80c8 0006 deadbeef"))  # sender report
    assert is_rtcp(bytes.fromhex("81c9 0007"))  # receiver report
    assert not is_rtcp(PLAIN)
    assert not is_rtcp(bytes.fromhex("80 f6"))  # marker + PT 118
    assert not is_rtcp(b"\x80")


def test_slin16_big_endian_to_little_endian() -> None:
    payload = b"\x12\x34\xff\xfe\x80\x00\x7f\xff"
    pcm = slin16_payload_to_pcm(payload)
    assert pcm == b"\x34\x12\xfe\xff\x00\x80\xff\x7f"
    assert struct.unpack("<4h", pcm) == (0x1234, -2, -32768, 32767)


def test_slin16_odd_trailing_byte_dropped() -> None:
    assert slin16_payload_to_pcm(b"\x12\x34\x56") == b"\x34\x12"
    assert slin16_payload_to_pcm(b"\x12") == b""
    assert slin16_payload_to_pcm(b"") == b""
