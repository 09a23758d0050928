"""The ``hotline`` command: run the service, manage its database and its Asterisk, place test calls."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from hotline import asterisk, db
from hotline.auth import UserError, password_file
from hotline.models import WebUser
from hotline.settings import Settings, SettingsError, load_settings

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description="Alo Hotline: citizen hotline on Asterisk")
    parser.add_argument(
        "--config", type=Path, help="path to hotline.toml (default: $HOTLINE_CONFIG or config/hotline.toml)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("run", help="answer calls (needs a running Asterisk and an upgraded database)")

    db_cmd = sub.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    db_cmd.add_parser("upgrade", help="apply all migrations")
    down = db_cmd.add_parser("downgrade", help="revert to a revision")
    down.add_argument("revision")
    db_cmd.add_parser("current", help="show the schema revision")

    ast = sub.add_parser("asterisk", help="the Asterisk the hotline runs").add_subparsers(
        dest="action", required=True
    )
    ast.add_parser("up", help="render config, start Asterisk, wait for ARI")
    ast.add_parser("down", help="stop the Asterisk that 'up' started")
    ast.add_parser("status", help="show whether Asterisk runs and ARI answers")
    cli = ast.add_parser("cli", help="Asterisk console, or one command with -x")
    cli.add_argument("-x", dest="execute", help="CLI command to run, e.g. 'pjsip show endpoints'")

    prompts = sub.add_parser("prompts", help="caller prompts").add_subparsers(dest="action", required=True)
    prompts.add_parser("build", help="synthesise prompts that have no recording")

    sub.add_parser("banner", help="print where everything is")

    speech = sub.add_parser("speech", help="speech engines").add_subparsers(dest="action", required=True)
    speech.add_parser("models", help="show which engine and model transcribe each language")

    users = sub.add_parser("users", help="web sign-in accounts").add_subparsers(dest="action", required=True)
    users.add_parser("list", help="show every user")
    # No abbreviations: "--password SECRET" must fail, not be taken for --password-file.
    add = users.add_parser(
        "add", help="create a user (the password is asked for, never an argument)", allow_abbrev=False
    )
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=["agent", "supervisor", "admin"])
    add.add_argument("--agent", help="the [[agents]] id this user is")
    add.add_argument("--name", default="", help="display name (default: the username)")
    passwd = users.add_parser(
        "passwd", help="set a new password (ends the user's sessions)", allow_abbrev=False
    )
    passwd.add_argument("username")
    for cmd in (add, passwd):
        cmd.add_argument(
            "--password-file", type=Path, help="read the password from this file's first line ('-': stdin)"
        )
    for action, text in (
        ("disable", "stop a user signing in (ends their sessions)"),
        ("enable", "undo disable"),
    ):
        users.add_parser(action, help=text).add_argument("username")

    call = sub.add_parser("call", help="place a test call through SIPp")
    call.add_argument("number", nargs="?", help="number to dial (default: asterisk.extension)")
    call.add_argument("--digits", default="", help="DTMF digits to press after answer, e.g. 12")
    call.add_argument("--say", type=Path, help="WAV file to speak after the digits")
    call.add_argument("--hold", type=float, default=30.0, help="seconds to stay on the line at most")
    return parser


def _run(settings: Settings) -> int:
    from hotline.app import run_forever

    return asyncio.run(run_forever(settings))


def _db(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "upgrade":
        db.upgrade(settings.database_url)
    elif args.action == "downgrade":
        db.downgrade(settings.database_url, args.revision)

    async def current() -> str:
        store = db.Store(settings.database_url)
        try:
            return await store.check_schema()
        finally:
            await store.close()

    try:
        print(f"database at revision {asyncio.run(current())}")
    except db.DatabaseError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


def _asterisk(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "up":
        instance = asterisk.up(settings)
        print(
            f"Asterisk {instance.version} ({instance.mode}) is up: ARI {settings.ari.url}, "
            f"SIP udp:{settings.asterisk.sip_host}:{settings.asterisk.sip_port}"
        )
    elif args.action == "down":
        print("Asterisk stopped" if asterisk.down(settings) else "no Asterisk of ours was running")
    elif args.action == "status":
        state = asterisk.status(settings)
        print(json.dumps(state, indent=2))
        return 0 if state["ari_answers"] else 1
    elif args.action == "cli":
        return asterisk.cli(settings, args.execute)
    return 0


def _prompts(settings: Settings, _args: argparse.Namespace) -> int:
    from hotline.callconfig import load_call_config

    _, ivr = load_call_config(settings)
    instance = asterisk.load_instance(settings) or asterisk.plan_instance(settings)
    for (name, language), uri in sorted(asterisk.build_instance_prompts(settings, instance, ivr).items()):
        print(f"{name:>16} {language}  {uri}")
    return 0


def _speech(settings: Settings, _args: argparse.Namespace) -> int:
    from transcripts.speech_models import plan

    for line in plan(settings).lines():  # a SpeechConfigError is a SettingsError: exit 2
        print(line)
    return 0


def _transcripts_line(settings: Settings) -> str:
    from transcripts.speech_models import SpeechConfigError, plan

    try:
        return plan(settings).summary()
    except SpeechConfigError as exc:
        return f"none: {exc}"


def _banner(settings: Settings) -> int:
    from hotline.web import web_url

    sip = f"{settings.asterisk.sip_host}:{settings.asterisk.sip_port}"
    secrets = settings.state_path / "secrets"
    agents = ", ".join(f"agent-{a.id}" for a in settings.agents) or "none configured"
    logins = ", ".join(a.id for a in settings.agents) or "none configured"
    print(
        f"""
Alo Hotline
  web            {web_url(settings)}login  (health: {web_url(settings)}healthz)
  web admin      user admin, password in {secrets}/web-admin-password (created by 'hotline run')
  web agents     users {logins} (passwords in {secrets}/web-<id>-password)
  ARI            {settings.ari.url}  (user {settings.ari.user}, password in {secrets}/ari-password)
  SIP            udp:{sip}  - dial {settings.asterisk.extension}
  database       {settings.database_url.split("@")[-1]}
  try a call     .venv/bin/hotline call {settings.asterisk.extension}
  softphone      register caller-phone@{sip} (password in {secrets}/caller-phone-password)
  agent phones   {agents} (passwords in {secrets}/agent-<id>-password)
  transcripts    {_transcripts_line(settings)}
  paging desks   {_desks_line(settings, secrets)}
"""
    )
    return 0


def _desks_line(settings: Settings, secrets: Path) -> str:
    """The desk phones urgent cases are paged to (they register as desk-<target>)."""
    if not settings.escalation.enabled:
        return "paging is off ([escalation] enabled = false)"
    from escalation.config import load_escalation

    paging = load_escalation(Path(settings.escalation.file))
    desks = [
        f"desk-{name}" for name, t in paging.targets.items() if t.voice is not None and t.voice.registers
    ]
    if not desks:
        return f"{len(paging.targets)} targets in {settings.escalation.file}"
    return f"{', '.join(desks)} (passwords in {secrets}/desk-<target>-password)"


def _call(settings: Settings, args: argparse.Namespace) -> int:
    from hotline.sipp import SippError, place_call

    try:
        result = place_call(
            settings,
            number=args.number or settings.asterisk.extension,
            digits=args.digits,
            say=args.say,
            hold=args.hold,
        )
    except SippError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(result.summary())
    return 0 if result.ok else 1


def _read_password(path: Path | None) -> str:
    """From --password-file (first line; '-' is stdin), else asked twice at the terminal."""
    if path is not None:
        try:
            text = sys.stdin.readline() if str(path) == "-" else path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"{path}: cannot read: {exc.strerror}") from None
        return text.splitlines()[0] if text.strip() else ""
    password = getpass.getpass("Password / Parola: ")
    if getpass.getpass("Again / Tekrar: ") != password:
        raise UserError("the two passwords differ")
    return password


def _print_users(users: Sequence[WebUser]) -> None:
    for u in users:
        last = u.last_login_at.isoformat(timespec="seconds") if u.last_login_at else "never"
        state = "disabled" if u.disabled else "active"
        print(f"{u.username:<20} {u.role:<10} {u.agent_id or '-':<8} {state:<8} {last:<25} {u.display_name}")


def _users(settings: Settings, args: argparse.Namespace) -> int:
    from hotline.auth import Users

    if args.action == "add" and args.agent and args.agent not in {a.id for a in settings.agents}:
        raise UserError(f"no [[agents]] entry has id {args.agent!r}")
    password = _read_password(args.password_file) if args.action in ("add", "passwd") else ""

    async def act(users: Users) -> str:
        if args.action == "list":
            _print_users(await users.list())
            return ""
        if args.action == "add":
            await users.add(args.username, args.role, password, args.name, args.agent)
            return f"user {args.username} added ({args.role})"
        if args.action == "passwd":
            await users.set_password(args.username, password)
            # A generated password file that no longer opens anything goes, so nobody relies on it.
            generated = settings.state_path / "secrets" / password_file(args.username)
            if generated.exists() and generated.read_text().strip() != password:
                generated.unlink()
            return f"password of {args.username} changed; their sessions are closed"
        await users.set_disabled(args.username, args.action == "disable")
        return f"user {args.username} {args.action}d"

    async def main() -> str:
        store = db.Store(settings.database_url)
        try:
            await store.check_schema()
            return await act(Users(store))
        finally:
            await store.close()

    if said := asyncio.run(main()):
        print(said)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(f"hotline: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    handlers: dict[str, Callable[[], int]] = {
        "run": lambda: _run(settings),
        "db": lambda: _db(settings, args),
        "asterisk": lambda: _asterisk(settings, args),
        "prompts": lambda: _prompts(settings, args),
        "call": lambda: _call(settings, args),
        "banner": lambda: _banner(settings),
        "speech": lambda: _speech(settings, args),
        "users": lambda: _users(settings, args),
    }
    try:
        return handlers[args.command]()
    except SettingsError as exc:  # files read later, such as the IVR menus
        print(f"hotline: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (asterisk.AsteriskError, db.DatabaseError, UserError) as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
