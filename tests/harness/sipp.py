"""SIPp parties that only tests and benchmarks need: desk phones that answer (and may press keys),
never answer or are busy, and crowds of callers from one SIPp process.

The caller itself (``call``), port hand-out and running SIPp are the product's, in
``hotline.sipp`` (``hotline call`` uses them); they are importable from here too, so a test or a
benchmark run from the repository root needs one import: ``from tests.harness import sipp``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from hotline.settings import Settings
from hotline.sipp import (
    DTMF_GAP_MS,
    DTMF_NAMES,
    SDP,
    SippError,
    SippResult,
    call,
    caller_scenario,
    dtmf_pcap,
    free_port,
    run_sipp,
)

__all__ = [
    "Phone",
    "SippError",
    "SippResult",
    "call",
    "caller_scenario",
    "crowd",
    "free_port",
    "phone",
    "phone_scenario",
    "run_sipp",
]


_OK_TO_LAST = """SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
"""


def phone_scenario(
    ring_ms: int = 500,
    talk_ms: int = 0,
    mode: str = "answer",
    audio: Path | None = None,
    keys: str = "",
    keys_after_ms: int = 0,
    folder: Path | None = None,
) -> str:
    """SIPp UAS scenario XML: a desk phone.

    ``answer``: rings ``ring_ms`` and answers, then hangs up after ``talk_ms`` unless the other
    side hangs up first (0: waits for the other side); while answered it sends ``audio`` (an
    8 kHz mu-law WAV) over and over, as a live phone sends audio all call long (without it, the
    phone sends none, and a media timeout would end its calls); ``never``: rings until cancelled;
    ``busy``: refuses with 486. A CANCEL while ringing is answered properly (200, 487), as a
    real phone does when a caller gives up or another agent picked up first. Each call logs
    one of: answered, cancelled, busy.

    ``keys`` (``answer`` only): a desk that listens ``keys_after_ms`` after answering, then
    presses these RFC 2833 keys (0-9, *, #; ',' waits a second), logging ``pressed <key>`` for
    each; ``talk_ms`` then counts from the last key (give it 200 ms or more: a key takes 140 ms
    to play). A BYE before the last key ends the call cleanly and logs ``hung up before the last
    key``. The key recordings are written to ``folder``, which must outlive the SIPp run
    (``phone()`` sees to it).
    """
    if mode not in ("answer", "never", "busy"):
        raise SippError(f"unknown phone mode {mode!r}")
    if keys and mode != "answer":
        raise SippError(f"a phone in mode {mode!r} never answers, so it cannot press keys")
    press_keys = _key_steps(keys, keys_after_ms, folder) if keys else ""
    invite = """<recv request="INVITE" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="remote_from"/>
      <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="invite_cseq"/>
    </action>
  </recv>
  <nop><action><log message="offered from [$remote_from]"/></action></nop>"""
    if mode == "busy":
        body = """<send><![CDATA[
SIP/2.0 486 Busy Here
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
CSeq: [$invite_cseq] INVITE
Content-Length: 0

]]></send>
  <recv request="ACK"/>
  <nop><action><log message="busy"/></action></nop>"""
        return _phone(invite + "\n  " + body)
    wait = 3_600_000 if mode == "never" else ring_ms
    speak = f'<nop><action><exec rtp_stream="{escape(str(audio))},-1,0"/></action></nop>\n  ' if audio else ""
    hang_up = (
        f"""<recv request="BYE" timeout="{talk_ms}" ontimeout="our_bye"/>
  <send><![CDATA[
{_OK_TO_LAST}
]]></send>
  <nop next="end"/>
  <label id="our_bye"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:agent@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To: [$remote_from]
Call-ID: [call_id]
CSeq: 1 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>"""
        if talk_ms > 0
        else f"""<recv request="BYE"/>
  <send><![CDATA[
{_OK_TO_LAST}
]]></send>"""
    )
    body = f"""<send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:agent@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
  <recv request="CANCEL" timeout="{wait}" ontimeout="answer"/>
  <send><![CDATA[
{_OK_TO_LAST}
]]></send>
  <send><![CDATA[
SIP/2.0 487 Request Terminated
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
CSeq: [$invite_cseq] INVITE
Content-Length: 0

]]></send>
  <recv request="ACK"/>
  <nop><action><log message="cancelled"/></action></nop>
  <nop next="end"/>
  <label id="answer"/>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:agent@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

{SDP}]]></send>
  <recv request="ACK"/>
  <nop><action><log message="answered"/></action></nop>
  {speak}{press_keys}{hang_up}
  <label id="end"/>"""
    return _phone(invite + "\n  " + body)


def _key_steps(keys: str, after_ms: int, folder: Path | None) -> str:
    """Listen ``after_ms``, then press ``keys`` as a caller does; a BYE before the last key ends
    the call cleanly (``hung up before the last key``)."""
    bad = [k for k in keys if k not in DTMF_NAMES and k != ","]
    if bad:
        raise SippError(f"cannot press {''.join(bad)!r}: keys are 0-9, * and #, and ',' waits a second")
    if folder is None:
        raise SippError("a phone that presses keys needs a folder for the DTMF recordings")
    plan: list[tuple[str, int]] = [("wait", after_ms)] if after_ms > 0 else []
    for key in keys:
        plan += [("wait", 1000)] if key == "," else [(key, 0), ("wait", DTMF_GAP_MS)]
    if plan[-1] == ("wait", DTMF_GAP_MS):
        plan.pop()  # the talk (or the wait for BYE) that follows leaves the last key time to play
    steps: list[str] = []
    press = 0
    for n, (step, ms) in enumerate(plan):
        if step == "wait":
            # Not a <pause>: SIPp aborts the call (a failed run) on a BYE that arrives during one.
            steps.append(
                f'<recv request="BYE" timeout="{ms}" ontimeout="key_{n}"/>\n'
                f'  <nop next="bye_in_keys"/>\n  <label id="key_{n}"/>'
            )
            continue
        pcap = dtmf_pcap(step, press, folder)
        press += 1
        steps.append(f'<nop><action><exec play_pcap_audio="{escape(str(pcap))}"/></action></nop>')
        steps.append(f'<nop><action><log message="pressed {escape(step)}"/></action></nop>')
    steps.append(f"""<nop next="keys_done"/>
  <label id="bye_in_keys"/>
  <send><![CDATA[
{_OK_TO_LAST}
]]></send>
  <nop><action><log message="hung up before the last key"/></action></nop>
  <nop next="end"/>
  <label id="keys_done"/>""")
    return "\n  ".join(steps) + "\n  "


def _phone(body: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<scenario name="hotline phone">
  {body}
</scenario>
"""


async def crowd(
    settings: Settings,
    number: str,
    calls: int,
    hold: float = 30.0,
    rate: float = 100.0,
    first_caller: int = 5320000000,
) -> SippResult:
    """``calls`` callers dialling ``number`` together from one SIPp process, ``rate`` new calls a
    second, with caller ids counting up from ``first_caller``. Each stays until the far end hangs up
    or ``hold`` seconds pass; the log has one ``hangup=remote`` or ``hangup=local`` line per call."""
    with tempfile.TemporaryDirectory(prefix="hotline-crowd-") as tmp:
        folder = Path(tmp)
        ids = "".join(f"0{first_caller + n};\n" for n in range(calls))
        (folder / "callers.csv").write_text(f"SEQUENTIAL\n{ids}")
        args = [
            f"{settings.asterisk.sip_host}:{settings.asterisk.sip_port}",
            "-s", number,
            "-m", str(calls),
            "-l", str(calls),
            "-r", str(rate),
            "-i", "127.0.0.1",
            "-p", str(free_port()),
            "-mi", "127.0.0.1",
            "-mp", str(free_port(even=True)),
            "-inf", str(folder / "callers.csv"),
        ]  # fmt: skip
        return await run_sipp(caller_scenario(hold=hold), args, timeout=hold + calls / rate + 30)


@dataclass(slots=True)
class Phone:
    """A running SIPp phone; ``contact`` is what an agent's AOR points at."""

    port: int
    task: asyncio.Task[SippResult]
    process: asyncio.subprocess.Process | None = None

    @property
    def contact(self) -> str:
        return f"sip:agent@127.0.0.1:{self.port}"

    async def result(self, timeout: float = 60.0) -> SippResult:
        return await asyncio.wait_for(asyncio.shield(self.task), timeout)

    async def finish(self, timeout: float = 30.0) -> SippResult:
        """Take no more calls, end once the calls in progress are over (SIPp's SIGUSR1), and return
        the result: for phones whose number of calls is not known in advance. A phone still
        ringing for nobody never ends, and this times out."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGUSR1)
        return await self.result(timeout)


@contextlib.asynccontextmanager
async def phone(
    port: int | None = None,
    calls: int = 1,
    ring_ms: int = 500,
    talk_ms: int = 0,
    timeout: float = 120.0,
    mode: str = "answer",
    audio: Path | None = None,
    keys: str = "",
    keys_after_ms: int = 0,
) -> AsyncIterator[Phone]:
    """Run a SIPp phone for ``calls`` calls (see ``phone_scenario``); stopped on exit if still running.

    With ``keys`` it answers, listens ``keys_after_ms`` and presses them on every call: a police
    desk accepting a page ("press 1"). Without, an answering phone never presses any.
    """
    port = port or free_port()
    # -aa: answer the qualify OPTIONS Asterisk sends to phones, outside any call.
    args = ["-aa", "-i", "127.0.0.1", "-p", str(port), "-m", str(calls), "-mi", "127.0.0.1",
            "-mp", str(free_port(even=True))]  # fmt: skip

    def started(process: asyncio.subprocess.Process) -> None:
        desk.process = process

    with contextlib.ExitStack() as stack:
        folder: Path | None = None
        if keys:  # SIPp reads the key recordings while it runs: the folder lives as long as the phone
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hotline-phone-")))
        scenario = phone_scenario(ring_ms, talk_ms, mode, audio, keys, keys_after_ms, folder)
        task = asyncio.create_task(run_sipp(scenario, args, timeout, started))
        desk = Phone(port, task)
        try:
            yield desk
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, SippError):
                await task
