from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hotline.settings import SettingsError, load_settings
from tests.conftest import write_settings


def error_for(tmp_path: Path, body: str, environ: dict[str, str] | None = None) -> str:
    path = write_settings(tmp_path, body)
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ=environ or {})
    return str(caught.value)


def test_defaults_load_and_place_the_database_in_the_state_folder(tmp_path: Path) -> None:
    settings = load_settings(write_settings(tmp_path), environ={})
    assert settings.web.port == 8080
    assert settings.database_url == f"sqlite:///{tmp_path / 'state' / 'hotline.db'}"
    assert settings.ivr.menus == "config/ivr.toml"


def test_shipped_config_is_valid() -> None:
    settings = load_settings(Path("config/hotline.toml"), environ={})
    assert settings.asterisk.extension == "183"
    assert settings.ari.host == "127.0.0.1"


def test_wrong_type_names_file_key_and_reason(tmp_path: Path) -> None:
    message = error_for(tmp_path, '[web]\nport = "8080"\n')
    assert message == f"{tmp_path / 'hotline.toml'}: web.port: input should be a valid integer, got '8080'"


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    message = error_for(tmp_path, "[ari]\npasword = 'x'\n")
    assert message == f"{tmp_path / 'hotline.toml'}: ari.pasword: unknown key"


def test_unknown_section_is_rejected(tmp_path: Path) -> None:
    assert error_for(tmp_path, "[queue]\nx = 1\n").endswith(": queue: unknown key")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"nope\.toml: file not found"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_invalid_toml(tmp_path: Path) -> None:
    assert "not valid TOML" in error_for(tmp_path, "[web\n")


def test_env_overrides_are_parsed_and_validated(tmp_path: Path) -> None:
    path = write_settings(tmp_path, "[web]\nport = 8080\n")
    settings = load_settings(path, environ={"HOTLINE_WEB__PORT": "9090", "HOTLINE_ARI__PASSWORD": "s3cret"})
    assert settings.web.port == 9090
    assert settings.ari.password == "s3cret"
    message = error_for(tmp_path, "", {"HOTLINE_WEB__PORT": "eighty"})
    assert (
        message == "HOTLINE_WEB__PORT (environment): web.port: input should be a valid integer, got 'eighty'"
    )


def test_secrets_are_never_echoed_and_a_password_of_digits_stays_a_password(tmp_path: Path) -> None:
    path = write_settings(tmp_path)
    settings = load_settings(path, environ={"HOTLINE_ARI__PASSWORD": "12345678"})
    assert settings.ari.password == "12345678"
    quoted = {"HOTLINE_DATABASE__URL": '"postgresql://u:pw@db/hotline"'}  # a TOML string, as documented
    assert load_settings(path, environ=quoted).database.url == "postgresql://u:pw@db/hotline"
    message = error_for(tmp_path, "[ari]\npassword = 87654321\n")
    assert message.endswith("ari.password: input should be a valid string") and "87654321" not in message
    message = error_for(tmp_path, '[[agents]]\nid = "7"\nname = "A"\npassword = 4242\n')
    assert "agents[0].password" in message and "4242" not in message


def test_ari_must_stay_on_loopback_when_we_run_asterisk(tmp_path: Path) -> None:
    message = error_for(tmp_path, '[ari]\nurl = "http://10.1.2.3:8088"\n')
    assert "ari.url must be on loopback" in message


def test_credentials_in_the_ari_url_are_refused(tmp_path: Path) -> None:
    assert "must not carry credentials" in error_for(tmp_path, '[ari]\nurl = "http://u:p@127.0.0.1:8088"\n')


def test_agent_list_errors_point_at_the_entry(tmp_path: Path) -> None:
    message = error_for(tmp_path, '[[agents]]\nid = "1001"\nname = "A"\n[[agents]]\nid = "1002"\n')
    assert message.endswith("agents[1].name: required key is missing")


def test_rtp_range_must_be_ordered(tmp_path: Path) -> None:
    assert "rtp_end must be above rtp_start" in error_for(
        tmp_path, "[asterisk]\nrtp_start = 20000\nrtp_end = 10000\n"
    )


def test_dead_line_timeouts_default_to_production_values(tmp_path: Path) -> None:
    asterisk = load_settings(write_settings(tmp_path), environ={}).asterisk
    assert (asterisk.rtp_timeout, asterisk.rtp_timeout_hold) == (30, 300)
    assert (asterisk.session_timers, asterisk.session_expires, asterisk.session_min_se) == ("yes", 90, 90)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("rtp_timeout = -1", "asterisk.rtp_timeout: Input should be greater than or equal to 0"),
        ("rtp_timeout = 2.5", "asterisk.rtp_timeout: input should be a valid integer, got 2.5"),
        ("rtp_timeout_hold = -5", "asterisk.rtp_timeout_hold: Input should be greater than or equal to 0"),
        ("session_timers = 'sometimes'", "asterisk.session_timers: Input should be 'yes', 'always' or 'no'"),
        ("session_min_se = 30", "asterisk.session_min_se: Input should be greater than or equal to 90"),
        (
            "session_expires = 120\nsession_min_se = 180",
            "asterisk: session_expires must be at least session_min_se",
        ),
    ],
)
def test_dead_line_timeouts_are_checked(tmp_path: Path, body: str, reason: str) -> None:
    assert error_for(tmp_path, f"[asterisk]\n{body}\n").endswith(f"hotline.toml: {reason}")


@pytest.mark.parametrize("body", ['[web]\nport = "x"\n', "[web]\nhots = 1\n"])
def test_cli_reports_one_line_and_exit_code_2(tmp_path: Path, body: str) -> None:
    path = write_settings(tmp_path, body)
    result = subprocess.run(
        [sys.executable, "-m", "hotline.cli", "--config", str(path), "asterisk", "status"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"hotline: configuration error: {path}: web.")
