"""A real SIP caller for trying the hotline (``hotline call``), driven through SIPp.

A caller dials, presses RFC 2833 digits from the pcaps shipped with SIPp, may speak a WAV file,
and then waits for the hotline to hang up (or hangs up itself after ``hold`` seconds). Desk
phones and crowds of callers, which only tests and benchmarks need, are in tests/harness/sipp.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from hotline.settings import Settings

DTMF_PCAPS = Path("/usr/share/sip-tester")
DTMF_NAMES = {**{str(d): str(d) for d in range(10)}, "*": "star", "#": "pound"}
DTMF_GAP_MS = 250  # each pcap lasts 140 ms; the rest is the inter-digit pause a person leaves


class SippError(Exception):
    """SIPp is missing or the scenario could not run."""


_handed_out: set[int] = set()


def free_port(kind: int = socket.SOCK_DGRAM, even: bool = False) -> int:
    """A port the kernel just handed out on loopback (even when RTP needs it).

    Never the same port twice in one process: the kernel may offer a port it just gave us again,
    and two SIPp processes started together would then fight over it.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if (not even or port % 2 == 0) and port not in _handed_out:
            _handed_out.add(port)
            return port
    raise SippError("no free port found")


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if not path:
        raise SippError("sipp is not installed: apt-get install sip-tester")
    return path


# The audio offer (and answer) of every scenario: PCMU and RFC 2833 keys.
SDP = """v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=sendrecv
"""


def dtmf_pcap(digit: str, press: int, folder: Path) -> Path:
    """The shipped RFC 2833 recording of ``digit``, moved on in RTP time for the ``press``-th key.

    Replaying one recording twice sends the same RTP timestamp twice, and Asterisk takes the
    second as a retransmission of the first: "11" would arrive as "1". The shipped recordings
    also start at different timestamps ("1" before "2"), so "21" would lose its "1" the same
    way. Each press is put on one clock: its own sequence numbers and timestamps, after those of
    the press before (the UDP checksum is cleared, which IPv4 allows).
    """
    data = bytearray((DTMF_PCAPS / f"dtmf_2833_{DTMF_NAMES[digit]}.pcap").read_bytes())
    offset = 24  # pcap global header; the records are Ethernet + IPv4 + UDP + RTP
    first: tuple[int, int] | None = None
    while offset < len(data):
        length = struct.unpack_from("<I", data, offset + 8)[0]
        packet = offset + 16
        udp = packet + 14 + (data[packet + 14] & 0x0F) * 4
        rtp = udp + 8
        struct.pack_into(">H", data, udp + 6, 0)
        seq, stamp = struct.unpack_from(">HI", data, rtp + 2)
        first = first or (seq, stamp)
        struct.pack_into(
            ">HI",
            data,
            rtp + 2,
            (1000 + press * 20 + seq - first[0]) & 0xFFFF,
            (80_000 + press * 8000 + stamp - first[1]) & 0xFFFFFFFF,
        )
        offset = packet + length
    path = folder / f"dtmf-{press}.pcap"
    path.write_bytes(bytes(data))
    return path


def caller_scenario(
    digits: str = "",
    say: Path | None = None,
    hold: float = 30.0,
    answer_wait_ms: int = 0,
    folder: Path | None = None,
    speak_after_ms: int = 0,
) -> str:
    """SIPp UAC scenario XML: dial, press digits, optionally speak, then wait for the far end's BYE.

    The DTMF recordings for ``digits`` are written to ``folder`` (it must outlive the SIPp run).
    """
    bad = [d for d in digits if d not in DTMF_NAMES and d != ","]
    if bad:
        raise SippError(f"cannot press {''.join(bad)!r}: digits are 0-9, * and #, and ',' waits a second")
    if digits and folder is None:
        raise SippError("caller_scenario needs a folder for the DTMF recordings")
    steps: list[str] = []
    if answer_wait_ms:
        steps.append(f'<pause milliseconds="{answer_wait_ms}"/>')
    press = 0
    for digit in digits:
        if digit == ",":  # as on a phone's dialler: wait a second before the next key
            steps.append('<pause milliseconds="1000"/>')
            continue
        assert folder is not None
        pcap = dtmf_pcap(digit, press, folder)
        press += 1
        steps.append(f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
        steps.append(f'<pause milliseconds="{DTMF_GAP_MS}"/>')
    if say is not None:
        if speak_after_ms:
            steps.append(f'<pause milliseconds="{speak_after_ms}"/>')
        steps.append(f'<nop><action><exec rtp_stream="{escape(str(say))},1,0"/></action></nop>')
    body = "\n  ".join(steps)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<scenario name="hotline caller">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Test Caller" <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:[field0]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{SDP}]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Test Caller" <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: <sip:[field0]@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0

]]></send>
  {body}
  <recv request="BYE" timeout="{int(hold * 1000)}" ontimeout="local_hangup"/>
  <nop><action><log message="hangup=remote"/></action></nop>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[field0]@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
  <nop next="done"/>
  <label id="local_hangup"/>
  <nop><action><log message="hangup=local"/></action></nop>
  <send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Test Caller" <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
  <label id="done"/>
</scenario>
"""


@dataclass(slots=True)
class SippResult:
    returncode: int
    duration: float
    log: str
    errors: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def hung_up_by(self) -> str:
        """'remote' when the hotline hung up on the caller, 'local' when the caller did."""
        for who in ("remote", "local"):
            if f"hangup={who}" in self.log:
                return who
        return ""

    def summary(self) -> str:
        state = "ok" if self.ok else f"failed (sipp exit {self.returncode})"
        who = {"remote": "the hotline hung up", "local": "the caller hung up"}.get(self.hung_up_by, "")
        tail = f"\n{self.errors.strip()}" if self.errors.strip() and not self.ok else ""
        return f"call {state} after {self.duration:.1f} s; {who}{tail}".rstrip("; ")


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


async def run_sipp(
    scenario: str,
    args: list[str],
    timeout: float,
    on_start: Callable[[asyncio.subprocess.Process], None] | None = None,
) -> SippResult:
    """Run one SIPp process to completion with the scenario; never leaves it running.

    ``on_start`` receives the process once it runs (to signal it, or read its CPU time).
    """
    with tempfile.TemporaryDirectory(prefix="hotline-sipp-") as tmp:
        folder = Path(tmp)
        (folder / "scenario.xml").write_text(scenario)
        log, errors = folder / "messages.log", folder / "errors.log"
        cmd = [
            sipp_binary(),
            *args,
            "-sf", str(folder / "scenario.xml"),
            "-nostdin",
            "-trace_logs", "-log_file", str(log),
            "-trace_err", "-error_file", str(errors),
            "-timeout", f"{int(timeout)}s", "-timeout_error",
        ]  # fmt: skip
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=tmp
        )
        if on_start is not None:
            on_start(process)
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), timeout + 10)
        except (TimeoutError, asyncio.CancelledError):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        return SippResult(
            returncode=process.returncode or 0,
            duration=time.monotonic() - started,
            log=_read(log),
            errors=_read(errors) + stderr.decode(errors="replace"),
        )


async def call(
    settings: Settings,
    number: str,
    digits: str = "",
    say: Path | None = None,
    hold: float = 30.0,
    caller_id: str = "05321234567",
    wait: float = 0.0,
    speak_after: float = 0.0,
) -> SippResult:
    """Place one call to the hotline's SIP trunk and wait until it ends.

    After answer the caller waits ``wait`` seconds, presses ``digits``, waits ``speak_after``
    seconds, speaks ``say``, and then stays on the line until the far end hangs up or ``hold``
    seconds have passed.
    """
    if say is not None and not say.is_file():
        raise SippError(f"{say}: no such file")
    with tempfile.TemporaryDirectory(prefix="hotline-caller-") as tmp:
        folder = Path(tmp)
        (folder / "caller.csv").write_text(f"SEQUENTIAL\n{caller_id};\n")
        if say is not None:
            say = await to_ulaw(say, folder / "speech.wav")
        args = [
            f"{settings.asterisk.sip_host}:{settings.asterisk.sip_port}",
            "-s", number,
            "-m", "1",
            "-i", "127.0.0.1",
            "-p", str(free_port()),
            "-mi", "127.0.0.1",
            "-mp", str(free_port(even=True)),
            "-inf", str(folder / "caller.csv"),
        ]  # fmt: skip
        scenario = caller_scenario(
            digits,
            say,
            hold,
            answer_wait_ms=int(wait * 1000),
            folder=folder,
            speak_after_ms=int(speak_after * 1000),
        )
        return await run_sipp(scenario, args, timeout=hold + wait + speak_after + 30)


async def to_ulaw(source: Path, target: Path) -> Path:
    """SIPp streams 8 kHz mono mu-law WAV as PCMU; convert whatever the caller gave us."""
    process = await asyncio.create_subprocess_exec(
        "sox", str(source), "-r", "8000", "-c", "1", "-e", "u-law", str(target),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await process.communicate()
    if process.returncode != 0:
        raise SippError(
            f"{source}: cannot convert to telephone audio: {err.decode(errors='replace').strip()}"
        )
    return target


def place_call(
    settings: Settings, number: str, digits: str = "", say: Path | None = None, hold: float = 30.0
) -> SippResult:
    """Synchronous ``call`` for the command line."""
    return asyncio.run(call(settings, number, digits, say, hold))
