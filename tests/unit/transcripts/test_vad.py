"""The energy voice activity detector: where it cuts, on made-up audio whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from transcripts.engine import FRAME_BYTES, SAMPLE_RATE
from transcripts.vad import SILENCE_DB, Utterance, Vad, VadConfig, frame_level


def silence(seconds: float) -> bytes:
    return bytes(2 * round(seconds * SAMPLE_RATE))


def noise(seconds: float, dbfs: float, seed: int = 0) -> bytes:
    rms = 32768 * 10 ** (dbfs / 20)
    samples = np.random.default_rng(seed).normal(0, rms, round(seconds * SAMPLE_RATE))
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


def tone(seconds: float, dbfs: float = -20.0, hz: float = 440.0) -> bytes:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    amplitude = 32768 * 10 ** (dbfs / 20) * np.sqrt(2)  # a sine's level is its rms
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def cuts(utterances: list[Utterance]) -> list[tuple[float, float]]:
    return [(round(u.start, 3), round(u.end, 3)) for u in utterances]


def run(audio: bytes, chunk: int = FRAME_BYTES, config: VadConfig | None = None) -> list[Utterance]:
    vad = Vad(config)
    found = []
    for offset in range(0, len(audio), chunk):
        found += vad.feed(audio[offset : offset + chunk])
    return found + vad.flush()


def test_levels_of_frames() -> None:
    assert frame_level(silence(0.02)) == SILENCE_DB
    assert frame_level(tone(0.02, dbfs=-20.0)) == pytest.approx(-20.0, abs=0.1)
    assert frame_level(noise(0.02, dbfs=-40.0)) == pytest.approx(-40.0, abs=1.0)


@pytest.mark.parametrize("audio", [silence(3.0), noise(3.0, dbfs=-60.0)], ids=["digital", "line noise"])
def test_silence_is_no_utterance(audio: bytes) -> None:
    assert run(audio) == []


def test_tone_bursts_are_cut_with_preroll_and_tail() -> None:
    audio = silence(1.0) + tone(0.5) + silence(1.0) + tone(0.8) + silence(1.0)
    found = run(audio)
    # 200 ms before the first voiced frame, 200 ms after the last one.
    assert cuts(found) == [(0.8, 1.7), (2.3, 3.5)]
    assert [u.cut for u in found] == [False, False]
    first = found[0]
    assert len(first.pcm) == 2 * (first.end_sample - first.start_sample)
    assert first.pcm == audio[2 * first.start_sample : 2 * first.end_sample]


def test_an_utterance_is_reported_once_500_ms_of_silence_follow_it() -> None:
    vad = Vad()
    assert vad.feed(silence(0.5) + tone(0.5) + silence(0.48)) == []
    assert vad.in_speech
    (done,) = vad.feed(silence(0.02))
    assert cuts([done]) == [(0.3, 1.2)]
    assert not vad.in_speech and vad.flush() == []


def test_a_blip_shorter_than_60_ms_is_not_speech() -> None:
    assert run(silence(0.5) + tone(0.04) + silence(1.0)) == []
    assert cuts(run(silence(0.5) + tone(0.06) + silence(1.0))) == [(0.3, 0.76)]


def test_preroll_never_reaches_before_the_stream() -> None:
    assert cuts(run(silence(0.1) + tone(0.3) + silence(0.6))) == [(0.0, 0.6)]


def test_the_cuts_do_not_depend_on_how_the_audio_is_fed() -> None:
    audio = noise(0.7, -65.0) + tone(0.5) + noise(0.9, -65.0, seed=1) + tone(1.1, hz=300) + noise(0.3, -65.0)
    expected = cuts(run(audio))
    assert len(expected) == 2
    for chunk in (2, 322, 1000, 7 * FRAME_BYTES + 6, len(audio)):
        assert cuts(run(audio, chunk)) == expected


def test_flush_closes_open_speech_and_drops_a_partial_frame() -> None:
    vad = Vad()
    assert vad.feed(silence(0.4) + tone(0.5) + b"\x01\x00") == []
    (open_,) = vad.flush()
    assert cuts([open_]) == [(0.2, 0.9)]


def test_a_talker_who_never_pauses_is_cut_every_15_seconds() -> None:
    # Speech-like: 200 ms of voice, 100 ms quieter, for 20 s; the gaps are too short to end it.
    audio = b"".join(tone(0.2, hz=200 + 10 * i) + noise(0.1, -60.0, seed=i) for i in range(67))
    found = run(silence(0.5) + audio[: 2 * 20 * SAMPLE_RATE] + silence(1.0))
    assert [u.cut for u in found] == [True, False]
    assert found[0].start == pytest.approx(0.3)
    assert found[0].end - found[0].start == pytest.approx(15.0)
    assert found[1].start == found[0].end  # no audio lost, none repeated
    assert found[1].end == pytest.approx(20.5 + 0.2)  # the last voice ends at 20.5 s


def test_a_shorter_limit_is_honoured() -> None:
    found = run(tone(2.5, dbfs=-10.0), config=VadConfig(max_ms=1000))
    assert cuts(found) == [(0.0, 1.0), (1.0, 2.0), (2.0, 2.5)]
    assert [u.cut for u in found] == [True, True, False]


def test_the_noise_floor_learns_a_steady_noise_and_still_hears_speech_over_it() -> None:
    # A hum at -40 dBFS is louder than the absolute threshold: at first it is taken for speech,
    # then learnt as the floor, well before the 15 s limit.
    hum = np.frombuffer(noise(12.0, -40.0), "<i2").copy()
    hum[10 * SAMPLE_RATE :] += np.frombuffer(tone(2.0, dbfs=-15.0), "<i2")
    found = run(hum.tobytes() + noise(1.0, -40.0, seed=3))
    assert len(found) == 2
    learnt, spoken = found
    assert not learnt.cut and learnt.start == 0.0 and learnt.end < 8.0
    assert spoken.start == pytest.approx(10.0 - 0.2, abs=0.021)
    assert spoken.end == pytest.approx(12.0 + 0.2, abs=0.021)
