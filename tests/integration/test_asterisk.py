"""Provisioning against the real Asterisk: it answers ARI, runs our config, and keeps callers
reaching a person when the hotline process is not connected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hotline import asterisk
from hotline.settings import Settings
from tests.harness import sipp


def test_ari_answers_on_loopback_with_the_generated_password(
    hotline_settings: Settings, asterisk_instance: asterisk.Instance
) -> None:
    info = asterisk.ari_info(hotline_settings)
    assert info is not None
    assert info["system"]["version"].startswith("22.")
    assert asterisk_instance.version == info["system"]["version"]
    password = asterisk.ari_password(hotline_settings)
    assert len(password) >= 24
    secret_file = hotline_settings.state_path / "secrets" / "ari-password"
    assert secret_file.stat().st_mode & 0o077 == 0


def test_asterisk_runs_as_an_unprivileged_user(asterisk_instance: asterisk.Instance) -> None:
    status = Path(f"/proc/{asterisk_instance.pid}/status").read_text()
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert "0" not in uids  # real, effective, saved and file-system uid: none is root
    runner = asterisk.run_user(asterisk_instance)
    assert runner is not None and int(uids[1]) == runner[1]


def test_status_and_cli_commands(hotline_settings: Settings, asterisk_instance: asterisk.Instance) -> None:
    config = str(hotline_settings.state_path.parent / "hotline.toml")
    status = subprocess.run(
        [sys.executable, "-m", "hotline.cli", "--config", config, "asterisk", "status"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert '"ari_answers": true' in status.stdout
    endpoints = subprocess.run(
        [sys.executable, "-m", "hotline.cli", "--config", config,
         "asterisk", "cli", "-x", "pjsip show endpoints"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert endpoints.returncode == 0
    for name in ("caller", "caller-phone", "agent-9001"):
        assert f"Endpoint:  {name}" in endpoints.stdout


def test_up_again_finds_the_running_instance(
    hotline_settings: Settings, asterisk_instance: asterisk.Instance
) -> None:
    again = asterisk.up(hotline_settings)
    assert again.pid == asterisk_instance.pid


async def test_without_the_hotline_process_a_caller_rings_the_agents(
    hotline_settings: Settings, asterisk_instance: asterisk.Instance, phone_port: int, second_phone_port: int
) -> None:
    # No Stasis app is connected: the dialplan fallback must ring every agent's phone.
    async with (
        sipp.phone(port=phone_port, talk_ms=1000) as desk,
        sipp.phone(port=second_phone_port, mode="never") as other_desk,
    ):
        caller = await sipp.call(hotline_settings, "183", hold=60)
        answered = await desk.result()
        cancelled = await other_desk.result()
    assert answered.ok, answered.errors
    assert "answered" in answered.log
    assert "05321234567" in answered.log  # the agent saw the caller's number
    assert cancelled.ok and "cancelled" in cancelled.log  # the other phone stopped ringing
    assert caller.ok, caller.errors
    assert caller.hung_up_by == "remote"  # the agent ended the call, not a timeout
