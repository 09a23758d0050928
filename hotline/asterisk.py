"""Asterisk provisioning: find or build an Asterisk 22, render our config, start, stop, inspect.

Two ways to run it ourselves: a system ``asterisk`` binary (preferred when one is installed), or
a Debian sid root built once with mmdebstrap into a cache folder outside the repository (Debian 12
ships no Asterisk). Either way Asterisk runs as its own process with a config folder of ours, so
it never touches a system-wide configuration. ``external`` mode only talks to an Asterisk that
someone else runs.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jinja2

from agents.config import QueuesConfig
from agents.service import Strategy
from escalation.config import load_escalation
from hotline.callconfig import load_call_config
from hotline.secrets import secret
from hotline.settings import Settings
from ivr.config import IvrConfig
from ivr.prompts import build_prompts

TEMPLATES = Path(__file__).resolve().parent.parent / "config" / "asterisk"
ROOT_PACKAGES = ("asterisk", "asterisk-modules", "asterisk-core-sounds-en-wav", "asterisk-moh-opsound-wav")
ROOT_MARKER = ".alo-hotline-root"
MODULE_DIRS = (
    "/usr/lib/x86_64-linux-gnu/asterisk/modules",
    "/usr/lib/aarch64-linux-gnu/asterisk/modules",
    "/usr/lib64/asterisk/modules",
    "/usr/lib/asterisk/modules",
)
DATA_DIRS = ("/usr/share/asterisk", "/var/lib/asterisk")
# Our routing strategies as app_queue's nearest (app_queue has no skills: least recent for those).
APP_QUEUE_STRATEGIES = {
    Strategy.longest_idle: "leastrecent",
    Strategy.round_robin: "rrmemory",
    Strategy.fewest_calls: "fewestcalls",
    Strategy.ring_all: "ringall",
    Strategy.skills_weighted: "leastrecent",
}


class AsteriskError(Exception):
    """Provisioning failed; the message says what and what to do."""


@dataclass(frozen=True, slots=True)
class Instance:
    """One Asterisk we run: where its files are, as seen from the host and from inside Asterisk."""

    mode: str  # system | chroot | external
    root: str  # chroot folder, "" when Asterisk sees the host file system
    binary: str  # path as Asterisk's own process sees it
    inside_dir: str  # the instance folder as Asterisk sees it
    host_dir: str  # the same folder from the host
    pid: int = 0
    version: str = ""

    @property
    def conf(self) -> str:
        return f"{self.inside_dir}/etc/asterisk.conf"

    @property
    def sounds_host(self) -> Path:
        return Path(self.host_dir) / "sounds"

    def sound_uri(self, wav: Path) -> str:
        """The ``sound:`` URI of a WAV in our sounds folder (absolute path, no extension)."""
        return f"sound:{self.inside_dir}/sounds/{wav.stem}"

    def command(self, *args: str) -> list[str]:
        base = ["chroot", self.root, self.binary] if self.root else [self.binary]
        return [*base, "-C", self.conf, *args]


# ---------------------------------------------------------------- secrets


def ari_password(settings: Settings) -> str:
    return settings.ari.password or secret(settings, "ari-password")


# ---------------------------------------------------------------- where Asterisk comes from


def apt_mirror(
    deb822: Path = Path("/etc/apt/sources.list.d/debian.sources"),
    legacy: Path = Path("/etc/apt/sources.list"),
) -> str:
    """The Debian mirror this machine already uses (never a hard-coded host)."""
    if deb822.exists():
        for line in deb822.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            match = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+\S+\s+main", line)
            if match:
                return match.group(1)
    raise AsteriskError("no Debian mirror found in /etc/apt sources; set asterisk.mirror in hotline.toml")


def root_cache(settings: Settings) -> Path:
    if settings.asterisk.root_cache:
        return Path(settings.asterisk.root_cache).resolve()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "alo-hotline" / "asterisk-sid-root"


def _root_ready(root: Path) -> bool:
    marker = root / ROOT_MARKER
    return marker.exists() and marker.read_text().split() == list(ROOT_PACKAGES)


def build_root(settings: Settings, log: Any = print) -> Path:
    """Build the Debian sid root with Asterisk once; later calls return the cached one."""
    root = root_cache(settings)
    if _root_ready(root):
        return root
    if shutil.which("mmdebstrap") is None:
        raise AsteriskError("no Asterisk found and mmdebstrap is missing: apt-get install mmdebstrap")
    if os.geteuid() != 0:
        raise AsteriskError("building the Asterisk root needs root (mmdebstrap and chroot)")
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent build finishes first; we then reuse it
        if _root_ready(root):
            return root
        mirror = settings.asterisk.mirror or apt_mirror()
        staging = root.with_name(f"{root.name}.build-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        log(f"building the Asterisk root in {root} from {mirror} (once; about a minute)")
        started = time.monotonic()
        cmd = [
            "mmdebstrap",
            "--variant=minbase",
            '--aptopt=Acquire::Check-Valid-Until "false"',
            f"--include={','.join(ROOT_PACKAGES)}",
            "sid",
            str(staging),
            mirror,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            tail = "\n".join(result.stderr.strip().splitlines()[-5:])
            raise AsteriskError(f"mmdebstrap failed ({result.returncode}):\n{tail}")
        (staging / ROOT_MARKER).write_text(" ".join(ROOT_PACKAGES) + "\n")
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)
        log(f"Asterisk root built in {time.monotonic() - started:.0f} s")
    return root


def share_host_names(root: Path, hosts: Path = Path("/etc/hosts")) -> None:
    """Give the root the host's /etc/hosts, with the machine's own name in it.

    Asterisk looks its host name up for every call's media (acl.c ast_find_ourip). Without a
    hosts file in the root that goes to DNS, and a DNS server that is slow or unreachable stalls
    PJSIP for the resolver's timeout (5 s) on each call.
    """
    text = hosts.read_text() if hosts.exists() else "127.0.0.1 localhost\n"
    name = socket.gethostname()
    if name and not any(name in line.split()[1:] for line in text.splitlines() if not line.startswith("#")):
        text = text.rstrip("\n") + f"\n127.0.1.1 {name}\n"
    target = root / "etc" / "hosts"
    if target.exists() and target.read_text() == text:
        return
    tmp = target.with_name(f"hosts.{os.getpid()}")  # several instances may share the root
    tmp.write_text(text)
    tmp.replace(target)


def _system_binary(settings: Settings) -> str | None:
    if settings.asterisk.binary:
        if not os.access(settings.asterisk.binary, os.X_OK):
            raise AsteriskError(f"asterisk.binary {settings.asterisk.binary} is not an executable")
        return settings.asterisk.binary
    return shutil.which("asterisk") or next(
        (p for p in ("/usr/sbin/asterisk",) if os.access(p, os.X_OK)), None
    )


def _first_dir(root: Path, candidates: tuple[str, ...], what: str, override: str = "") -> str:
    if override:
        return override
    for candidate in candidates:
        if (root / candidate.lstrip("/")).is_dir():
            return candidate
    raise AsteriskError(f"no Asterisk {what} folder found (looked in {', '.join(candidates)})")


def instance_key(settings: Settings) -> str:
    """A short stable name for this state folder, so several hotlines (tests) share one root."""
    return hashlib.sha256(str(settings.state_path).encode()).hexdigest()[:12]


def plan_instance(settings: Settings, log: Any = print) -> Instance:
    """Decide which Asterisk to run and where its instance folder lives."""
    mode = settings.asterisk.mode
    binary = _system_binary(settings) if mode in ("auto", "system") else None
    if mode == "system" and not binary:
        raise AsteriskError("asterisk.mode is 'system' but no asterisk binary was found")
    if binary:
        host_dir = str(settings.state_path / "asterisk")
        return Instance("system", "", binary, host_dir, host_dir)
    if mode == "external":
        host_dir = str(settings.state_path / "asterisk")
        return Instance("external", "", "", host_dir, host_dir)
    root = build_root(settings, log)
    inside = f"/srv/alo-hotline/{instance_key(settings)}"
    return Instance("chroot", str(root), "/usr/sbin/asterisk", inside, str(root) + inside)


# ---------------------------------------------------------------- config


def _render_context(settings: Settings, instance: Instance, prompt_uris: dict[str, str]) -> dict[str, Any]:
    root = Path(instance.root or "/")
    inside = instance.inside_dir
    agent_passwords = {
        a.id: a.password or secret(settings, f"agent-{a.id}-password") for a in settings.agents
    }
    fallback_dial = "&".join(f"PJSIP/agent-{a.id}" for a in settings.agents)
    desks = desk_phones(settings)
    return {
        "dirs": {
            "etc": f"{inside}/etc",
            "lib": f"{inside}/lib",
            "spool": f"{inside}/spool",
            "run": f"{inside}/run",
            "log": f"{inside}/log",
            "cache": f"{inside}/cache",
            "modules": _first_dir(root, MODULE_DIRS, "modules", settings.asterisk.modules_dir),
            "data": _first_dir(root, DATA_DIRS, "data"),
        },
        "ari": settings.ari,
        "web": settings.web,
        "asterisk": settings.asterisk,
        "agents": settings.agents,
        "agent_passwords": agent_passwords,
        "ari_password": ari_password(settings),
        "caller_password": settings.asterisk.caller_password or secret(settings, "caller-phone-password"),
        "prompts": prompt_uris,
        "fallback_dial": fallback_dial,
        "desks": desks,
    }


def desk_phones(settings: Settings) -> list[dict[str, str]]:
    """The paging targets' desk phones that get an endpoint here (``desk-<target>``): at a fixed
    contact, or registering with a generated password."""
    if not settings.escalation.enabled:
        return []
    paging = load_escalation(Path(settings.escalation.file))
    return [
        {
            "id": name,
            "label": target.label.get("en") or next(iter(target.label.values()), name),
            "contact": target.voice.contact or "",
            "password": secret(settings, f"desk-{name}-password"),
        }
        for name, target in paging.targets.items()
        if target.voice is not None and target.voice.dial is None
    ]


def app_queues(settings: Settings, queues: QueuesConfig) -> list[dict[str, Any]]:
    """The queues named in asterisk.app_queue, as app_queue settings (see queues.conf)."""
    found = []
    for queue_id in dict.fromkeys(settings.asterisk.app_queue.values()):
        rules = queues.queues[queue_id]
        found.append(
            {
                "id": queue_id,
                "strategy": APP_QUEUE_STRATEGIES[rules.strategy],
                # app_queue takes whole seconds; never less than ours.
                "timeout": math.ceil(rules.ring_timeout),
                "wrapuptime": math.ceil(rules.wrap_up),
                "musicclass": rules.moh_class,
                "autopause": "yes" if rules.max_no_answer == 1 else "no",
                "members": [a.id for a in settings.agents if not a.queues or queue_id in a.queues],
            }
        )
    return found


def build_instance_prompts(
    settings: Settings, instance: Instance, ivr: IvrConfig
) -> dict[tuple[str, str], str]:
    """Synthesise every prompt into the instance; return (name, language) -> sound URI."""
    return build_instance_sounds(settings, instance, ivr.prompts)


def build_instance_sounds(
    settings: Settings, instance: Instance, texts: Mapping[str, Mapping[str, str]]
) -> dict[tuple[str, str], str]:
    """Synthesise prompt ``texts`` (name -> language -> text); return (name, language) -> sound URI."""
    built = build_prompts(
        texts, settings.prompts.voices, instance.sounds_host, Path(settings.prompts.recordings)
    )
    return {key: instance.sound_uri(wav) for key, wav in built.items()}


def _dialplan_playback(uris: dict[tuple[str, str], str], name: str, languages: list[str]) -> str:
    """Dialplan Playback() argument: the prompt in each language, paths without 'sound:', joined by '&'."""
    found = [uris[name, lang].removeprefix("sound:") for lang in languages if (name, lang) in uris]
    if not found:
        raise AsteriskError(f"prompt {name!r} has no text in any of hotline.languages")
    return "&".join(found)


def render_config(settings: Settings, instance: Instance) -> Path:
    """Write the instance's Asterisk config (and prompts) from config/asterisk; return the etc folder."""
    host = Path(instance.host_dir)
    for sub in ("etc", "lib", "lib/keys", "spool", "spool/recording", "run", "log", "cache", "sounds"):
        (host / sub).mkdir(parents=True, exist_ok=True)
    queues, ivr = load_call_config(settings)
    uris = build_instance_prompts(settings, instance, ivr)
    languages = settings.hotline.languages
    playback = {name: _dialplan_playback(uris, name, languages) for name in ("fallback", "unreachable")}
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # Asterisk config, not HTML
    )
    runner = run_user(instance)
    context = {
        **_render_context(settings, instance, playback),
        "app_queues": app_queues(settings, queues),
        "run_as": runner[0] if runner else "",
    }
    etc = host / "etc"
    etc.chmod(0o700)  # every agent's SIP password and the ARI password are in there
    for template in sorted(TEMPLATES.glob("*.conf")):
        _write_private(etc / template.name, env.get_template(template.name).render(**context))
    if runner:  # what Asterisk writes, and its config, belong to the user it runs as
        for sub in ("etc", "lib", "spool", "run", "log", "cache"):
            _chown_tree(host / sub, runner[1], runner[2])
    return etc


def run_user(instance: Instance) -> tuple[str, int, int] | None:
    """The unprivileged user Asterisk drops to (``asterisk``, as Debian's package creates it in
    the sid root or on this machine): name, uid, gid. None when we are not root (Asterisk then
    runs as whoever starts it) or the user does not exist."""
    if os.geteuid() != 0:
        return None
    passwd = Path(instance.root or "/") / "etc" / "passwd"
    try:
        lines = passwd.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split(":")
        if len(fields) > 3 and fields[0] == "asterisk":
            return fields[0], int(fields[2]), int(fields[3])
    return None


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    for folder, _dirs, files in os.walk(top):
        os.chown(folder, uid, gid)
        for name in files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read, from its creation on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file left by an older version may have been readable by all
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


# ---------------------------------------------------------------- process


def _state_file(settings: Settings) -> Path:
    return settings.state_path / "asterisk.json"


def load_instance(settings: Settings) -> Instance | None:
    path = _state_file(settings)
    if not path.exists():
        return None
    return Instance(**json.loads(path.read_text()))


def _save_instance(settings: Settings, instance: Instance) -> None:
    path = _state_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(instance), indent=2))
    tmp.replace(path)


def _ours(instance: Instance) -> bool:
    """True when the recorded pid is alive and is the Asterisk started with our config."""
    if instance.pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{instance.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return instance.conf.encode() in cmdline


def ari_info(settings: Settings, timeout: float = 2.0) -> dict[str, Any] | None:
    """GET /ari/asterisk/info with Basic auth; None when it does not answer (yet)."""
    request = urllib.request.Request(f"{settings.ari.url}/ari/asterisk/info")
    token = base64.b64encode(f"{settings.ari.user}:{ari_password(settings)}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise AsteriskError(f"ARI at {settings.ari.url} refused our credentials (401)") from None
        return None
    except (OSError, ValueError):
        return None


def _port_free(host: str, port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind) as sock:
        # Asterisk binds with SO_REUSEADDR, so lingering TIME_WAIT sockets do not block it either.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _check_ports(settings: Settings) -> None:
    checks = [
        ("ari.url", settings.ari.host, settings.ari.port, socket.SOCK_STREAM),
        ("asterisk.sip_port", settings.asterisk.sip_host, settings.asterisk.sip_port, socket.SOCK_DGRAM),
    ]
    for key, host, port, kind in checks:
        if not _port_free(host, port, kind):
            raise AsteriskError(
                f"{key}: port {port} on {host} is already in use; choose another in hotline.toml"
            )


def _log_tail(instance: Instance, lines: int = 8) -> str:
    path = Path(instance.host_dir) / "log" / "startup.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def up(settings: Settings, log: Any = print) -> Instance:
    """Start (or find running) the Asterisk for these settings; wait until ARI answers."""
    current = load_instance(settings)
    if current and current.mode != "external" and _ours(current) and ari_info(settings):
        return current
    instance = plan_instance(settings, log)
    if instance.mode == "external":
        render_config(settings, instance)  # prompts for the external Asterisk to read, if it shares our disk
        info = ari_info(settings)
        if not info:
            raise AsteriskError(f"external Asterisk: no ARI answer at {settings.ari.url}")
        instance = Instance(**{**asdict(instance), "version": info["system"]["version"]})
        _save_instance(settings, instance)
        return instance
    _check_ports(settings)
    if instance.root:
        share_host_names(Path(instance.root))
    render_config(settings, instance)
    startup_log = Path(instance.host_dir) / "log" / "startup.log"
    with open(startup_log, "wb") as out:
        process = subprocess.Popen(
            instance.command("-f", "-n"),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the shell (and `hotline asterisk up`) that started it
        )
    instance = Instance(**{**asdict(instance), "pid": process.pid})
    _save_instance(settings, instance)
    deadline = time.monotonic() + settings.asterisk.start_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AsteriskError(f"Asterisk exited with code {process.returncode}:\n{_log_tail(instance)}")
        info = ari_info(settings, timeout=1.0)
        if info:
            instance = Instance(**{**asdict(instance), "version": info["system"]["version"]})
            _save_instance(settings, instance)
            return instance
        time.sleep(0.2)
    stop(instance)
    raise AsteriskError(
        f"ARI did not answer at {settings.ari.url} within {settings.asterisk.start_timeout:.0f} s:\n"
        + _log_tail(instance)
    )


def stop(instance: Instance, timeout: float = 15.0) -> bool:
    """Stop the Asterisk we started (only that one). Return True when one was stopped."""
    if not _ours(instance):
        return False
    os.kill(instance.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(instance.pid, os.WNOHANG)
        if not _ours(instance):
            return True
        time.sleep(0.1)
    os.kill(instance.pid, signal.SIGKILL)
    return True


def down(settings: Settings, purge: bool = False) -> bool:
    """Stop our Asterisk; with ``purge``, also delete its instance folder (config, logs, prompts)."""
    instance = load_instance(settings)
    if instance is None:
        return False
    stopped = stop(instance)
    _state_file(settings).unlink(missing_ok=True)
    if purge and instance.mode != "external":
        shutil.rmtree(instance.host_dir, ignore_errors=True)
    elif instance.mode == "chroot":
        # The shared root keeps one instance folder per state folder ever used: its rendered
        # config (every password) goes with the Asterisk; recordings and logs stay. ``up``
        # renders it again.
        shutil.rmtree(Path(instance.host_dir) / "etc", ignore_errors=True)
    return stopped


def status(settings: Settings) -> dict[str, Any]:
    instance = load_instance(settings)
    running = bool(instance and (instance.mode == "external" or _ours(instance)))
    info = ari_info(settings) if running else None
    return {
        "mode": instance.mode if instance else "",
        "pid": instance.pid if instance else 0,
        "running": running,
        "ari": settings.ari.url,
        "ari_answers": info is not None,
        "version": info["system"]["version"] if info else "",
        "sip": f"{settings.asterisk.sip_host}:{settings.asterisk.sip_port}",
    }


def cli(settings: Settings, command: str | None) -> int:
    """Run an Asterisk CLI command (or an interactive console) on our instance."""
    instance = load_instance(settings)
    if instance is None or not _ours(instance):
        raise AsteriskError("our Asterisk is not running: run 'hotline asterisk up'")
    args = ["-r", "-x", command] if command else ["-r"]
    return subprocess.call(instance.command(*args))
