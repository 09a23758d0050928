"""Rendering Asterisk config and prompts, and the guards around starting and stopping Asterisk."""

from __future__ import annotations

import os
import subprocess
import tomllib
import wave
from pathlib import Path

import pytest

from hotline import asterisk
from hotline.secrets import secret
from hotline.settings import Settings
from ivr.prompts import Prompt, build_prompt
from tests.conftest import make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        '[ari]\nurl = "http://127.0.0.1:18123"\n[asterisk]\nsip_port = 15099\n'
        '[[agents]]\nid = "7"\nname = "Zeynep"\n'
        '[[agents]]\nid = "8"\nname = "Ali"\ncontact = "sip:desk@127.0.0.1:5099"\n',
    )


def test_rendered_config_listens_on_loopback_with_a_generated_password(
    settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "root"  # a stand-in for the sid root: only the folders rendering looks for
    (root / "usr/lib/x86_64-linux-gnu/asterisk/modules").mkdir(parents=True)
    (root / "usr/share/asterisk").mkdir(parents=True)
    instance = asterisk.Instance("chroot", str(root), "/usr/sbin/asterisk", "/srv/x", str(root / "srv/x"))
    etc = asterisk.render_config(settings, instance)
    http = (etc / "http.conf").read_text()
    assert "bindaddr = 127.0.0.1" in http and "bindport = 18123" in http
    password = asterisk.ari_password(settings)
    assert f"password = {password}" in (etc / "ari.conf").read_text()
    # Every rendered file holds or sits beside passwords: owner-only, and so is their folder.
    assert (
        all(f.stat().st_mode & 0o077 == 0 for f in etc.glob("*.conf")) and len(list(etc.glob("*.conf"))) > 10
    )
    assert etc.stat().st_mode & 0o077 == 0
    assert asterisk.ari_password(settings) == password  # generated once, then reused
    pjsip = (etc / "pjsip.conf").read_text()
    assert "bind = 127.0.0.1:15099" in pjsip
    assert "[agent-7](endpoint-common)" in pjsip and "contact = sip:desk@127.0.0.1:5099" in pjsip
    dialplan = (etc / "extensions.conf").read_text()
    assert "exten => 183,1," in dialplan and "Stasis(hotline)" in dialplan
    assert "Dial(PJSIP/agent-7&PJSIP/agent-8,60)" in dialplan
    conf = (etc / "asterisk.conf").read_text()
    assert "astetcdir => /srv/x/etc" in conf
    assert "astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules" in conf
    assert instance.sound_uri(Path("/any/welcome-tr-abc.wav")) == "sound:/srv/x/sounds/welcome-tr-abc"
    # Every prompt of config/ivr.toml in each of its languages.
    prompts = tomllib.loads(Path("config/ivr.toml").read_text(encoding="utf-8"))["prompts"]
    assert len(prompts) > 10  # the menus' prompts, and the digits an open case is read out with
    assert len(list((root / "srv/x/sounds").glob("*.wav"))) == sum(len(texts) for texts in prompts.values())


def test_every_endpoint_hangs_up_a_dead_line(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        '[asterisk]\nrtp_timeout = 12\nrtp_timeout_hold = 345\nsession_timers = "always"\n'
        'session_expires = 600\nsession_min_se = 120\n[[agents]]\nid = "7"\nname = "Zeynep"\n',
    )
    root = tmp_path / "root"
    (root / "usr/lib/x86_64-linux-gnu/asterisk/modules").mkdir(parents=True)
    (root / "usr/share/asterisk").mkdir(parents=True)
    instance = asterisk.Instance("chroot", str(root), "/usr/sbin/asterisk", "/srv/x", str(root / "srv/x"))
    pjsip = (asterisk.render_config(settings, instance) / "pjsip.conf").read_text()
    sections: dict[str, list[str]] = {}
    for line in pjsip.splitlines():
        if line.startswith("["):
            current = sections.setdefault(line, [])
        elif line and not line.startswith(";") and sections:
            current.append(line)
    template = sections["[endpoint-common](!)"]
    for option in (
        "rtp_timeout = 12",
        "rtp_timeout_hold = 345",
        "timers = always",
        "timers_sess_expires = 600",
        "timers_min_se = 120",
    ):
        assert option in template
    # The caller trunk, the caller softphone and every agent are endpoints built on that template.
    for endpoint in ("caller", "caller-phone", "agent-7"):
        assert f"[{endpoint}](endpoint-common)" in sections


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can hand files to another user")
def test_asterisk_is_told_to_drop_to_the_roots_asterisk_user_who_owns_what_it_writes(
    settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    (root / "usr/lib/x86_64-linux-gnu/asterisk/modules").mkdir(parents=True)
    (root / "usr/share/asterisk").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text(
        "root:x:0:0::/root:/bin/sh\nasterisk:x:4242:4343::/var/lib/asterisk:/bin/false\n"
    )
    instance = asterisk.Instance("chroot", str(root), "/usr/sbin/asterisk", "/srv/x", str(root / "srv/x"))
    etc = asterisk.render_config(settings, instance)
    assert "runuser = asterisk" in (etc / "asterisk.conf").read_text()
    for folder in ("etc", "lib", "spool", "run", "log"):
        assert (root / "srv/x" / folder).stat().st_uid == 4242
    assert (etc / "pjsip.conf").stat().st_uid == 4242 and (etc / "pjsip.conf").stat().st_mode & 0o077 == 0


def test_chroot_instances_live_inside_the_root_and_differ_per_state_folder(tmp_path: Path) -> None:
    a = make_settings(tmp_path / "a", '[asterisk]\nmode = "chroot"\nroot_cache = "/r"\n')
    b = make_settings(tmp_path / "b", '[asterisk]\nmode = "chroot"\nroot_cache = "/r"\n')
    assert asterisk.instance_key(a) != asterisk.instance_key(b)


def test_stop_never_touches_a_process_that_is_not_our_asterisk(settings: Settings) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        foreign = asterisk.Instance("system", "", "/usr/sbin/asterisk", "/x", "/x", pid=sleeper.pid)
        assert asterisk.stop(foreign) is False
        assert sleeper.poll() is None  # still running
    finally:
        sleeper.kill()
        sleeper.wait()
    assert asterisk.down(settings) is False  # nothing was started for this state folder


def test_taking_a_chroot_instance_down_removes_its_passwords_and_keeps_its_recordings(
    settings: Settings, tmp_path: Path
) -> None:
    host = tmp_path / "root/srv/x"
    for sub in ("etc", "spool/recording"):
        (host / sub).mkdir(parents=True)
    (host / "etc/pjsip.conf").write_text("password = secret\n")
    (host / "spool/recording/voicemail-1.wav").write_bytes(b"RIFF")
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that is no Asterisk of ours any more
    instance = asterisk.Instance(
        "chroot", str(tmp_path / "root"), "/usr/sbin/asterisk", "/srv/x", str(host), pid=gone.pid
    )
    asterisk._save_instance(settings, instance)
    asterisk.down(settings)
    assert not (host / "etc").exists() and (host / "spool/recording/voicemail-1.wav").exists()


def test_apt_mirror_is_read_from_either_sources_format(tmp_path: Path) -> None:
    deb822, legacy, none = tmp_path / "debian.sources", tmp_path / "sources.list", tmp_path / "missing"
    deb822.write_text("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n")
    legacy.write_text("# comment\ndeb [arch=amd64] http://legacy.example/debian bookworm main\n")
    assert asterisk.apt_mirror(deb822, legacy) == "http://mirror.example/debian"
    assert asterisk.apt_mirror(none, legacy) == "http://legacy.example/debian"
    with pytest.raises(asterisk.AsteriskError, match=r"set asterisk\.mirror"):
        asterisk.apt_mirror(none, none)


def test_prompts_are_synthesised_once_and_recordings_win(tmp_path: Path) -> None:
    prompt = Prompt("welcome", "tr", "Merhaba", "tr")
    first = build_prompt(prompt, tmp_path / "out")
    with wave.open(str(first)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert wav.getnframes() > 1000
    mtime = first.stat().st_mtime_ns
    assert build_prompt(prompt, tmp_path / "out") == first and first.stat().st_mtime_ns == mtime
    changed = build_prompt(Prompt("welcome", "tr", "Merhaba dünya", "tr"), tmp_path / "out")
    assert changed != first  # a new text is a new file

    recordings = tmp_path / "recordings" / "tr"
    recordings.mkdir(parents=True)
    subprocess.run(
        ["sox", "-n", "-r", "16000", "-c", "2", str(recordings / "welcome.wav"), "trim", "0", "0.5"],
        check=True,
    )
    recorded = build_prompt(prompt, tmp_path / "out", tmp_path / "recordings")
    assert recorded.name == "welcome-tr-recorded.wav"
    with wave.open(str(recorded)) as wav:
        assert (wav.getframerate(), wav.getnchannels()) == (8000, 1)


def test_secrets_are_private_files(settings: Settings) -> None:
    secret(settings, "token")
    folder = settings.state_path / "secrets"
    assert os.stat(folder).st_mode & 0o077 == 0
    assert os.stat(folder / "token").st_mode & 0o077 == 0
