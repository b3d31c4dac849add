"""Voice-activity segmentation: a stream of 16 kHz mono chunks of any size -> ``Utterance``s.

Two backends classify fixed frames as speech or not:

- ``silero`` (default): the Silero ONNX model shipped inside faster-whisper, one 512-sample frame (32 ms) at a
  time with the previous frame's last 64 samples as context and the LSTM state carried over; hysteresis as in
  faster-whisper (speech starts at ``threshold``, continues while the probability stays above ``threshold - 0.15``).
- ``webrtc``: ``webrtcvad`` on 30 ms int16 frames.

The ``Segmenter`` turns frames into utterances: speech opens one (with ``pre_roll_ms`` of audio before it),
``end_silence_ms`` of non-speech closes it, ``max_utterance_s`` cuts it, and one with less than ``min_speech_ms``
of speech frames is dropped. All times are stream time (samples fed / 16 kHz), so the result does not depend on
how the audio was chunked. ``segment()`` is the front door.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from finetune.base import ModelError

from .audio import AudioError, mono_float  # one AudioError for the package

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
"""The only rate the segmenter takes; resample first (``faster_whisper.decode_audio(path, sampling_rate=16000)``)."""

__all__ = ["SAMPLE_RATE", "AudioError", "Segmenter", "Utterance", "VadOptions", "segment"]

SILERO_FRAME = 512
SILERO_CONTEXT = 64
WEBRTC_FRAME = SAMPLE_RATE * 30 // 1000


class VadOptions(BaseModel):
    """How speech is found and cut into utterances. One ``[vad]`` section of the config."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["silero", "webrtc"] = Field(
        "silero", description="Frame classifier: the Silero ONNX model (accurate) or webrtcvad (tiny, noisier)."
    )
    threshold: float = Field(
        0.5, gt=0, lt=1, description="silero: speech probability that starts speech; it ends below threshold - 0.15."
    )
    webrtc_mode: int = Field(2, ge=0, le=3, description="webrtc: aggressiveness, 0 (keeps most) to 3 (drops most).")
    min_speech_ms: int = Field(250, ge=0, description="Utterances with less speech than this are dropped (clicks).")
    end_silence_ms: int = Field(400, gt=0, description="Non-speech that ends an utterance; the end-of-speech delay.")
    pre_roll_ms: int = Field(
        300, ge=0, description="Audio kept before speech onset, and after speech end, so no syllable is clipped."
    )
    max_utterance_s: float = Field(15.0, gt=0, description="An utterance is cut at this length, pre-roll included.")

    @model_validator(mode="after")
    def _room_for_speech(self) -> VadOptions:
        if self.max_utterance_s * 1000 <= self.pre_roll_ms + self.min_speech_ms:
            raise ValueError(
                f"max_utterance_s={self.max_utterance_s} leaves no room for pre_roll_ms + min_speech_ms "
                f"({self.pre_roll_ms + self.min_speech_ms} ms); raise it or lower those"
            )
        return self


@dataclass(frozen=True)
class Utterance:
    """One stretch of speech, as stream times in seconds."""

    audio: np.ndarray
    """float32 16 kHz mono: pre-roll, speech, then up to ``pre_roll_ms`` of what followed."""
    start_s: float
    """Stream time of ``audio[0]``."""
    speech_end_s: float
    """Stream time where speech stopped (the cut time for an utterance cut at ``max_utterance_s``)."""
    detected_s: float
    """Stream time when the segmenter decided the utterance was over (>= ``speech_end_s``)."""

    @property
    def end_s(self) -> float:
        """Stream time just after ``audio[-1]``."""
        return self.start_s + len(self.audio) / SAMPLE_RATE

    @property
    def end_of_speech_delay_s(self) -> float:
        """The VAD end-of-speech delay: how long after speech stopped the utterance was handed on."""
        return self.detected_s - self.speech_end_s


# --- frame classifiers --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _silero_session() -> Any:
    """The onnxruntime session of faster-whisper's bundled Silero model, loaded once."""
    try:
        from faster_whisper.vad import get_vad_model
    except ImportError as exc:
        raise ModelError(
            f"the silero VAD needs faster-whisper and onnxruntime ({exc.name} is missing): "
            "pip install faster-whisper onnxruntime, or set vad.backend = 'webrtc'"
        ) from exc
    try:
        model = get_vad_model()
    except RuntimeError as exc:  # faster-whisper's message when onnxruntime is missing
        raise ModelError(f"cannot load the silero VAD model: {exc}; pip install onnxruntime") from exc
    logger.info("loaded the silero VAD model")
    return model.session


class _Silero:
    frame = SILERO_FRAME

    def __init__(self, options: VadOptions):
        self._session = _silero_session()
        self._threshold = options.threshold
        self._neg_threshold = max(options.threshold - 0.15, 0.01)
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._input = np.zeros((1, SILERO_CONTEXT + SILERO_FRAME), dtype=np.float32)
        self._speaking = False

    def is_speech(self, frame: np.ndarray) -> bool:
        self._input[0, SILERO_CONTEXT:] = frame
        prob, self._h, self._c = self._session.run(None, {"input": self._input, "h": self._h, "c": self._c})
        self._input[0, :SILERO_CONTEXT] = frame[-SILERO_CONTEXT:]
        p = float(prob[0])
        self._speaking = p >= self._threshold or (self._speaking and p >= self._neg_threshold)
        return self._speaking


class _WebRtc:
    frame = WEBRTC_FRAME

    def __init__(self, options: VadOptions):
        try:
            import webrtcvad
        except ImportError as exc:
            raise ModelError(
                "the webrtc VAD needs webrtcvad: pip install webrtcvad-wheels, or set vad.backend = 'silero'"
            ) from exc
        self._vad = webrtcvad.Vad(options.webrtc_mode)

    def reset(self) -> None:
        """webrtcvad keeps no state between frames worth dropping."""

    def is_speech(self, frame: np.ndarray) -> bool:
        pcm = (np.clip(frame, -1.0, 1.0) * 32767).astype("<i2")
        return self._vad.is_speech(pcm.tobytes(), SAMPLE_RATE)


_BACKENDS = {"silero": _Silero, "webrtc": _WebRtc}


# --- the segmenter ------------------------------------------------------------------------------------------------


def _ms(ms: float) -> int:
    return int(round(ms * SAMPLE_RATE / 1000))


class Segmenter:
    """Streaming segmentation: ``feed()`` chunks of any size, get the utterances they completed."""

    def __init__(self, options: VadOptions | None = None, *, sample_rate: int = SAMPLE_RATE):
        if sample_rate != SAMPLE_RATE:
            raise AudioError(
                f"the VAD takes {SAMPLE_RATE} Hz audio, not {sample_rate} Hz; resample first, e.g. "
                f"faster_whisper.decode_audio(path, sampling_rate={SAMPLE_RATE}) or open the microphone at {SAMPLE_RATE} Hz"
            )
        self.options = options or VadOptions()
        self._backend = _BACKENDS[self.options.backend](self.options)
        self._frame = self._backend.frame
        self._pre_roll = _ms(self.options.pre_roll_ms)
        self._end_silence = _ms(self.options.end_silence_ms)
        self._min_speech = _ms(self.options.min_speech_ms)
        self._max_len = _ms(self.options.max_utterance_s * 1000)
        self._clock = 0  # stream sample index of self._pending[0]; survives reset() and flush()
        self._pending = np.zeros(0, dtype=np.float32)
        self._history: deque[np.ndarray] = deque()  # recent audio while idle, for the pre-roll
        self._history_len = 0
        self._active = False
        self._audio: list[np.ndarray] = []  # the utterance so far, contiguous from self._start
        self._start = 0
        self._last_voiced = 0  # stream sample index just after the last speech frame
        self._voiced = 0  # samples of speech frames in this utterance

    # public ------------------------------------------------------------------------------------------------------

    def feed(self, chunk: np.ndarray) -> list[Utterance]:
        """Take the next chunk (float32 16 kHz mono, any length); return the utterances it completed."""
        chunk = mono_float(chunk)
        if len(self._pending):
            chunk = np.concatenate([self._pending, chunk])
        done: list[Utterance] = []
        n_frames = len(chunk) // self._frame
        for i in range(n_frames):
            self._step(chunk[i * self._frame : (i + 1) * self._frame], done)
        self._pending = chunk[n_frames * self._frame :].copy()
        return done

    def flush(self) -> list[Utterance]:
        """End of stream: classify what is pending, emit the speech in progress, and start afresh."""
        done: list[Utterance] = []
        if len(self._pending):
            tail, self._pending = self._pending, np.zeros(0, dtype=np.float32)
            self._step(tail, done)
        if self._active:
            self._finish(self._clock, done)
        self._drop_state()
        return done

    @property
    def silence_s(self) -> float:
        """How long the speech in progress has paused; 0.0 while idle or while speech goes on."""
        return (self._clock - self._last_voiced) / SAMPLE_RATE if self._active else 0.0

    def so_far(self) -> Utterance | None:
        """The utterance in progress as it stands, as ``feed`` would give it if it ended now; None while idle or
        with too little speech yet. For work begun in a pause, before ``end_silence_ms`` tells whether it goes on:
        the utterance it ends as has the same ``start_s`` and ``speech_end_s`` when no speech came since."""
        if not self._active or self._voiced < self._min_speech:
            return None
        return self._utterance(np.concatenate(self._audio)[: self._kept(self._clock)], self._last_voiced, self._clock)

    def reset(self) -> None:
        """Drop speech in progress, pending samples and the classifier's state (e.g. while the assistant speaks).

        Stream time keeps counting: samples fed before the reset still advance it.
        """
        if self._active:
            logger.debug("VAD reset dropped speech from %.2f s", self._start / SAMPLE_RATE)
        self._clock += len(self._pending)
        self._pending = np.zeros(0, dtype=np.float32)
        self._drop_state()

    # internals -----------------------------------------------------------------------------------------------------

    def _drop_state(self) -> None:
        self._active = False
        self._audio = []
        self._history.clear()
        self._history_len = 0
        self._backend.reset()

    def _step(self, frame: np.ndarray, done: list[Utterance]) -> None:
        """One frame (a short last one on flush, classified zero-padded) starting at ``self._clock``."""
        n = len(frame)
        padded = frame if n == self._frame else np.pad(frame, (0, self._frame - n))
        speech = self._backend.is_speech(padded)
        t0, t1 = self._clock, self._clock + n
        self._clock = t1
        if not self._active:
            if speech:
                pre = self._take_history()
                self._active = True
                self._start = t0 - len(pre)
                self._audio = [pre, frame]
                self._last_voiced, self._voiced = t1, n
            else:
                self._remember(frame)
            return
        self._audio.append(frame)
        if speech:
            self._last_voiced = t1
            self._voiced += n
        elif t1 - self._last_voiced >= self._end_silence:
            self._finish(t1, done)
            return
        if t1 - self._start >= self._max_len:
            self._cut(done)

    def _remember(self, audio: np.ndarray) -> None:
        if not self._pre_roll or not len(audio):
            return
        self._history.append(audio)
        self._history_len += len(audio)
        while self._history_len - len(self._history[0]) >= self._pre_roll:
            self._history_len -= len(self._history.popleft())

    def _take_history(self) -> np.ndarray:
        """The last ``pre_roll_ms`` of audio heard while idle (less at stream start), emptying the history."""
        pre = np.concatenate(self._history)[-self._pre_roll :] if self._history else np.zeros(0, dtype=np.float32)
        self._history.clear()
        self._history_len = 0
        return pre

    def _finish(self, detected: int, done: list[Utterance]) -> None:
        """Close the utterance: keep it if it had enough speech, else let it become pre-roll history."""
        audio = np.concatenate(self._audio)
        self._active = False
        self._audio = []
        if self._voiced < self._min_speech:
            logger.debug(
                "VAD dropped %.0f ms of speech at %.2f s (< min_speech_ms)",
                1000 * self._voiced / SAMPLE_RATE,
                self._start / SAMPLE_RATE,
            )
            self._remember(audio)
            return
        keep = self._kept(detected)
        self._remember(audio[keep:])
        done.append(self._utterance(audio[:keep], self._last_voiced, detected))

    def _kept(self, detected: int) -> int:
        """How much of the utterance's audio it keeps when it ends at ``detected``: up to ``pre_roll_ms`` past the
        speech."""
        return min(self._last_voiced + self._pre_roll, detected) - self._start

    def _cut(self, done: list[Utterance]) -> None:
        """The utterance reached ``max_utterance_s``: emit exactly that much, carry on with the rest as speech."""
        audio = np.concatenate(self._audio)
        cut = self._start + self._max_len
        enough = self._voiced >= self._min_speech
        if enough:
            done.append(self._utterance(audio[: self._max_len], cut, cut))
        rest = audio[self._max_len :]
        logger.debug("VAD cut an utterance at %.2f s (max_utterance_s)", cut / SAMPLE_RATE)
        self._start = cut
        self._audio = [rest]
        self._last_voiced = max(self._last_voiced, cut)
        self._voiced = self._last_voiced - cut

    def _utterance(self, audio: np.ndarray, speech_end: int, detected: int) -> Utterance:
        utterance = Utterance(
            audio=audio.astype(np.float32, copy=False),
            start_s=self._start / SAMPLE_RATE,
            speech_end_s=speech_end / SAMPLE_RATE,
            detected_s=detected / SAMPLE_RATE,
        )
        logger.debug(
            "VAD utterance %.2f-%.2f s, detected at %.2f s",
            utterance.start_s,
            utterance.speech_end_s,
            utterance.detected_s,
        )
        return utterance


def segment(
    chunks: Iterable[np.ndarray], options: VadOptions | None = None, *, sample_rate: int = SAMPLE_RATE
) -> Iterator[Utterance]:
    """Segment a stream of 16 kHz mono float chunks into utterances; speech still going at the end is flushed.

    Options and the sample rate are checked here, before the first chunk is read.
    """
    segmenter = Segmenter(options, sample_rate=sample_rate)

    def utterances() -> Iterator[Utterance]:
        for chunk in chunks:
            yield from segmenter.feed(chunk)
        yield from segmenter.flush()

    return utterances()
