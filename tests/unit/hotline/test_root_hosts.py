"""The Asterisk root resolves the machine's own name from a hosts file, never through DNS."""

from __future__ import annotations

import socket
from pathlib import Path

from hotline.asterisk import share_host_names


def test_the_root_gets_the_host_names_and_the_machine_name(tmp_path: Path) -> None:
    root, hosts = tmp_path / "root", tmp_path / "hosts"
    (root / "etc").mkdir(parents=True)
    hosts.write_text("127.0.0.1 localhost\n# 127.0.0.1 commented-out\n")
    share_host_names(root, hosts)
    copied = (root / "etc" / "hosts").read_text()
    assert copied.startswith("127.0.0.1 localhost\n")
    assert copied.endswith(f"\n127.0.1.1 {socket.gethostname()}\n")  # Asterisk looks it up per call

    hosts.write_text(f"127.0.0.1 localhost {socket.gethostname()}\n")
    share_host_names(root, hosts)
    assert (root / "etc" / "hosts").read_text() == hosts.read_text()  # already there: copied as is
    assert [p.name for p in (root / "etc").iterdir()] == ["hosts"]  # no temporary file left behind
