"""Numbers dialled straight into a queue: settings, start-up checks and the rendered Asterisk config."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline import asterisk
from hotline.callconfig import load_call_config
from hotline.settings import Settings, SettingsError, load_settings
from tests.conftest import make_settings, write_settings

BASE = '[ari]\nurl = "http://127.0.0.1:18124"\n[asterisk]\nsip_port = 15098\n'
AGENTS = (
    '[[agents]]\nid = "7"\nname = "Zeynep"\n'
    '[[agents]]\nid = "8"\nname = "Ali"\nqueues = ["operator"]\n'
    '[[agents]]\nid = "9"\nname = "Can"\nqueues = ["complaints"]\n'
)


def settings_error(tmp_path: Path, asterisk_keys: str) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(write_settings(tmp_path, BASE + asterisk_keys), environ={})
    return str(caught.value)


def render(settings: Settings, tmp_path: Path) -> Path:
    root = tmp_path / "root"  # a stand-in for the sid root: only the folders rendering looks for
    (root / "usr/lib/x86_64-linux-gnu/asterisk/modules").mkdir(parents=True)
    (root / "usr/share/asterisk").mkdir(parents=True)
    instance = asterisk.Instance("chroot", str(root), "/usr/sbin/asterisk", "/srv/x", str(root / "srv/x"))
    return asterisk.render_config(settings, instance)


def test_direct_numbers_are_digits_and_never_the_hotline_number(tmp_path: Path) -> None:
    where = tmp_path / "hotline.toml"
    assert settings_error(tmp_path, 'direct = { "183" = "operator" }\n') == (
        f"{where}: asterisk: direct: 183 is already the extension number"
    )
    assert settings_error(tmp_path, 'direct = { "18a" = "operator" }\n').startswith(
        f"{where}: asterisk.direct.18a"
    )


def test_a_direct_line_to_an_unknown_queue_stops_start_up(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, BASE + 'direct = { "1830" = "operater" }\n')
    with pytest.raises(SettingsError) as caught:
        load_call_config(settings)
    assert str(caught.value) == (
        f"{tmp_path / 'hotline.toml'}: asterisk.direct.1830: no queue named 'operater' in config/queues.toml"
    )


def test_direct_lines_are_rendered_into_the_dialplan(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, BASE + 'direct = { "1830" = "operator", "1831" = "emergency" }\n')
    dialplan = (render(settings, tmp_path) / "extensions.conf").read_text()
    assert (
        "exten => 1830,1,NoOp(Alo Hotline direct line to operator from ${CALLERID(all)})\n"
        " same => n,Answer(,i)\n"
        " same => n,Stasis(hotline,queue,operator)\n"
        ' same => n,GotoIf($["${STASISSTATUS}" = "FAILED"]?183,fallback)\n'
        " same => n,Hangup()\n"
    ) in dialplan
    assert "Stasis(hotline,queue,emergency)" in dialplan
    # The catch-all comes last, after every number of ours.
    assert dialplan.index("exten => _X.,1,") > dialplan.index("exten => 1831,1,")


def test_app_queue_numbers_differ_from_direct_lines(tmp_path: Path) -> None:
    assert settings_error(tmp_path, 'direct = { "1830" = "operator" }\napp_queue = { "1830" = "x" }\n') == (
        f"{tmp_path / 'hotline.toml'}: asterisk: app_queue: 1830 is already the direct.1830 number"
    )


def test_the_app_queue_baseline_copies_the_queue_and_its_agents(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, BASE + 'app_queue = { "1839" = "complaints" }\n' + AGENTS)
    etc = render(settings, tmp_path)
    dialplan = (etc / "extensions.conf").read_text()
    assert "exten => 1839,1,Answer(,i)\n same => n,Queue(complaints)\n same => n,Hangup()\n" in dialplan
    assert dialplan.index("exten => _X.,1,") > dialplan.index("exten => 1839,1,")

    queues = (etc / "queues.conf").read_text()
    assert "[operator]" not in queues  # only the baseline's queues are copied into app_queue
    complaints = queues[queues.index("[complaints]") :]
    for line in (
        "strategy = fewestcalls",  # config/queues.toml: complaints are spread by fewest calls
        "timeout = 20",
        "wrapuptime = 30",
        "ringinuse = no",
        "autopause = no",
        "member => PJSIP/agent-7,0,agent-7",  # serves every queue
        "member => PJSIP/agent-9,0,agent-9",
    ):
        assert f"\n{line}\n" in complaints, line
    assert "agent-8" not in complaints  # operator only


def test_without_baseline_numbers_app_queue_has_no_queues(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, BASE + AGENTS)
    queues, _ = load_call_config(settings)
    assert asterisk.app_queues(settings, queues) == []
