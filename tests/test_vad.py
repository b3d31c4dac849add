"""assistant.vad on real speech: espeak-ng commands joined with known pauses, through both backends."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest
from pydantic import ValidationError

from assistant import vad
from assistant.vad import SAMPLE_RATE, AudioError, Segmenter, Utterance, VadOptions, segment
from finetune.base import ModelError
from skills import SkillcallError
from tests.speech import trim

SR = SAMPLE_RATE
COMMANDS = ["Set a timer for five minutes", "What is the weather in Oslo", "Add milk to my shopping list"]
LEAD_S, GAP_S, TAIL_S = 1.0, 1.5, 1.0
TOLERANCE_S = 0.3
CHUNK_SIZES = [160, 512, 4000, 16000]
FRAME_S = {"silero": 512 / SR, "webrtc": 0.030}


@dataclass(frozen=True)
class Stream:
    audio: np.ndarray
    truth: list[tuple[float, float]]  # (speech start, speech end) of each command, in stream seconds


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), dtype=np.float32)


def _chunks(audio: np.ndarray, size: int) -> list[np.ndarray]:
    return [audio[i : i + size] for i in range(0, len(audio), size)]


def _run(audio: np.ndarray, size: int = 512, **options: object) -> list[Utterance]:
    return list(segment(_chunks(audio, size), VadOptions(**options)))


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[np.ndarray]:
    """The three commands spoken by espeak-ng, 16 kHz mono float32, silence trimmed."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("needs espeak-ng to make speech: apt-get install espeak-ng (install.sh does)")
    from faster_whisper import decode_audio

    folder = tmp_path_factory.mktemp("speech")
    spoken = []
    for i, text in enumerate(COMMANDS):
        wav = folder / f"command{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
        spoken.append(trim(decode_audio(str(wav), sampling_rate=SR)))
    return spoken


@pytest.fixture(scope="module")
def stream(clips) -> Stream:
    """Leading silence, the three commands with GAP_S pauses between, trailing silence."""
    parts, truth, t = [_silence(LEAD_S)], [], LEAD_S
    for i, clip in enumerate(clips):
        parts.append(clip)
        truth.append((t, t + len(clip) / SR))
        pause = _silence(GAP_S if i < len(clips) - 1 else TAIL_S)
        parts.append(pause)
        t += (len(clip) + len(pause)) / SR
    return Stream(np.concatenate(parts), truth)


@pytest.fixture(params=["silero", "webrtc"])
def backend(request) -> str:
    return request.param


def _assert_matches(utterances: list[Utterance], stream: Stream, backend: str, options: VadOptions) -> None:
    """One utterance per command, in order, each a slice of the stream around the command's speech."""
    assert len(utterances) == len(stream.truth)
    for u, (start, end) in zip(utterances, stream.truth, strict=True):
        onset = u.start_s + options.pre_roll_ms / 1000
        assert abs(onset - start) <= TOLERANCE_S, (u.start_s, start)
        assert abs(u.speech_end_s - end) <= TOLERANCE_S, (u.speech_end_s, end)
        assert u.start_s <= start and u.end_s >= end  # the whole command is in the audio
        first = round(u.start_s * SR)
        assert u.audio.dtype == np.float32 and u.audio.ndim == 1
        np.testing.assert_array_equal(u.audio, stream.audio[first : first + len(u.audio)])
        end_silence = options.end_silence_ms / 1000
        assert end_silence - 1e-9 <= u.end_of_speech_delay_s < end_silence + FRAME_S[backend]
        assert u.detected_s - u.speech_end_s == pytest.approx(u.end_of_speech_delay_s)
    assert [u.start_s for u in utterances] == sorted(u.start_s for u in utterances)


def test_three_commands_give_three_utterances(stream, backend):
    options = VadOptions(backend=backend)
    _assert_matches(list(segment(_chunks(stream.audio, 512), options)), stream, backend, options)


def test_chunk_size_does_not_change_the_utterances(stream, backend):
    options = VadOptions(backend=backend)
    reference = list(segment(_chunks(stream.audio, CHUNK_SIZES[0]), options))
    _assert_matches(reference, stream, backend, options)
    rng = np.random.default_rng(7)
    ragged = np.split(stream.audio, np.sort(rng.choice(len(stream.audio), 300, replace=False)))
    feeds = [_chunks(stream.audio, size) for size in CHUNK_SIZES[1:]]
    feeds += [ragged, [stream.audio.astype(np.float64)]]  # any sizes, empty chunks, float64
    for chunks in feeds:
        again = list(segment(chunks, options))
        assert [(u.start_s, u.speech_end_s, u.detected_s) for u in again] == [
            (u.start_s, u.speech_end_s, u.detected_s) for u in reference
        ]
        for a, b in zip(again, reference, strict=True):
            np.testing.assert_array_equal(a.audio, b.audio)


def test_silence_and_low_noise_give_nothing(backend):
    noise = np.random.default_rng(0).uniform(-0.01, 0.01, 10 * SR).astype(np.float32)
    assert _run(_silence(10), backend=backend) == []
    assert _run(noise, backend=backend) == []
    segmenter = Segmenter(VadOptions(backend=backend))
    assert segmenter.feed(np.zeros(0, dtype=np.float32)) == [] and segmenter.flush() == []


def test_click_is_dropped(backend):
    audio = _silence(3)
    audio[SR : SR + SR // 50] = np.random.default_rng(1).uniform(-0.8, 0.8, SR // 50)  # a 20 ms burst
    assert _run(audio, backend=backend) == []


def test_min_speech_ms_drops_a_short_burst_of_speech(clips, backend):
    audio = _silence(3)
    syllable = clips[0][int(0.3 * SR) : int(0.45 * SR)]  # 150 ms of real speech
    audio[SR : SR + len(syllable)] = syllable
    assert len(_run(audio, backend=backend, min_speech_ms=0)) == 1
    assert _run(audio, backend=backend) == []


def test_continuous_speech_is_cut_at_max_utterance_s(clips, backend):
    once = np.concatenate(clips)
    speech = np.tile(once, -(-20 * SR // len(once)))[: 20 * SR]  # 20 s of speech without a pause
    audio = np.concatenate([_silence(LEAD_S), speech, _silence(TAIL_S)])
    options = VadOptions(backend=backend)
    utterances = list(segment(_chunks(audio, 4000), options))
    assert len(utterances) == 2
    cut, rest = utterances
    assert len(cut.audio) == round(options.max_utterance_s * SR)
    assert cut.speech_end_s == cut.detected_s == pytest.approx(cut.start_s + options.max_utterance_s)
    assert abs(cut.start_s + options.pre_roll_ms / 1000 - LEAD_S) <= TOLERANCE_S
    assert rest.start_s == pytest.approx(cut.end_s)  # the rest carries on where the cut was, nothing lost
    assert abs(rest.speech_end_s - (LEAD_S + 20)) <= TOLERANCE_S
    assert len(rest.audio) / SR < options.max_utterance_s


def test_flush_emits_speech_cut_off_at_end_of_stream(stream, backend):
    start, end = stream.truth[2]
    stop = round((start + end) / 2 * SR) + 123  # mid-command, not on a frame boundary
    segmenter = Segmenter(VadOptions(backend=backend))
    completed = [u for chunk in _chunks(stream.audio[:stop], 4000) for u in segmenter.feed(chunk)]
    assert len(completed) == 2
    (last,) = segmenter.flush()
    assert abs(last.start_s + 0.3 - start) <= TOLERANCE_S
    assert start < last.speech_end_s <= last.detected_s == stop / SR
    assert last.end_s <= stop / SR
    assert segmenter.flush() == []
    assert len(list(segment([stream.audio[:stop]], VadOptions(backend=backend)))) == 3  # the front door flushes


def test_reset_drops_speech_in_progress(stream, clips, backend):
    start, end = stream.truth[1]
    stop = round((start + end) / 2 * SR)
    segmenter = Segmenter(VadOptions(backend=backend))
    assert len(segmenter.feed(stream.audio[:stop])) == 1
    segmenter.reset()
    assert segmenter.feed(_silence(2)) == [] and segmenter.flush() == []
    # stream time keeps counting across reset() and flush()
    (later,) = segmenter.feed(np.concatenate([_silence(1), clips[2], _silence(1)]))
    assert abs(later.start_s + 0.3 - (stop / SR + 3)) <= TOLERANCE_S


def test_the_utterance_so_far_in_a_pause_is_the_one_that_ends_there(clips, backend):
    segmenter = Segmenter(VadOptions(backend=backend))
    assert segmenter.so_far() is None and segmenter.silence_s == 0.0
    segmenter.feed(np.concatenate([_silence(1), clips[0]]))
    assert segmenter.silence_s < 0.1  # still speaking
    segmenter.feed(_silence(0.2))
    paused = segmenter.so_far()
    assert paused is not None and 0.15 <= segmenter.silence_s <= 0.2 + FRAME_S[backend]
    (ended,) = segmenter.feed(_silence(1))
    assert (paused.start_s, paused.speech_end_s) == (ended.start_s, ended.speech_end_s)
    np.testing.assert_array_equal(paused.audio, ended.audio[: len(paused.audio)])
    assert segmenter.so_far() is None and segmenter.silence_s == 0.0  # idle again


def test_speech_after_a_pause_moves_the_end_of_speech_on(clips, backend):
    segmenter = Segmenter(VadOptions(backend=backend))
    segmenter.feed(np.concatenate([_silence(1), clips[0], _silence(0.25)]))
    paused = segmenter.so_far()
    (ended,) = segmenter.feed(np.concatenate([clips[1], _silence(1)]))  # 0.25 s is no end: one utterance
    assert ended.start_s == paused.start_s and ended.speech_end_s > paused.speech_end_s + 1.0


# --- errors ----------------------------------------------------------------------------------------------------------


def test_wrong_sample_rate_is_an_audio_error():
    with pytest.raises(AudioError, match="resample") as info:
        Segmenter(sample_rate=44100)
    assert isinstance(info.value, SkillcallError)
    with pytest.raises(AudioError, match="8000 Hz"):
        segment([_silence(1)], sample_rate=8000)  # raised at the call, not at the first chunk


def test_stereo_chunk_is_an_audio_error():
    with pytest.raises(AudioError, match=r"mono.*mean\(axis=1\)"):
        Segmenter(VadOptions(backend="webrtc")).feed(np.zeros((1600, 2), dtype=np.float32))


def test_integer_chunk_is_an_audio_error():
    with pytest.raises(AudioError, match="int16.*32768"):
        Segmenter(VadOptions(backend="webrtc")).feed(np.zeros(1600, dtype=np.int16))


def test_a_nan_sample_does_not_deafen_the_vad(clips, backend):
    glitch = _silence(0.5)
    glitch[100], glitch[200] = np.nan, np.inf  # a driver glitch before the speech
    found = _run(np.concatenate([glitch, clips[0], _silence(1.5)]), backend=backend)
    assert len(found) == 1 and np.isfinite(found[0].audio).all()


@pytest.mark.parametrize(
    "bad",
    [
        {"backend": "pyannote"},
        {"threshold": 1.5},
        {"webrtc_mode": 4},
        {"min_speech_ms": -1},
        {"end_silence_ms": 0},
        {"pre_roll_ms": -10},
        {"max_utterance_s": 0.5},  # no room for pre-roll + min speech
        {"end_silence": 400},  # a typo is not ignored
    ],
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValidationError):
        VadOptions(**bad)


def test_missing_webrtcvad_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "webrtcvad", None)
    with pytest.raises(ModelError, match="pip install webrtcvad-wheels"):
        Segmenter(VadOptions(backend="webrtc"))


def test_missing_faster_whisper_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "faster_whisper.vad", None)
    vad._silero_session.cache_clear()
    with pytest.raises(ModelError, match="pip install faster-whisper"):
        Segmenter()
    vad._silero_session.cache_clear()


def test_missing_onnxruntime_names_the_package(monkeypatch):
    from faster_whisper.vad import get_vad_model

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    vad._silero_session.cache_clear()
    get_vad_model.cache_clear()
    with pytest.raises(ModelError, match="pip install onnxruntime"):
        Segmenter()
    vad._silero_session.cache_clear()
