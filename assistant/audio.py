"""Audio in: the microphone (sounddevice, 16 kHz mono) and files (any rate and channel count), as one stream of
float32 chunks, so a WAV goes through exactly the path live speech takes."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from skills import SkillcallError

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
CHUNK = 512  # 32 ms: one Silero VAD frame


class AudioError(SkillcallError):
    """Audio that cannot be read, or an input device that cannot be opened."""


class AudioOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: str | int | None = Field(None, description="Input device name or index (`skillcall devices`); None = "
                                                       "the system default.")  # fmt: skip
    retry_max_s: float = Field(30.0, gt=0, description="Longest wait between attempts to reopen a lost device.")

    @field_validator("device")
    @classmethod
    def _index(cls, device: str | int | None) -> str | int | None:
        """Digits are an index, as `skillcall devices` prints it, however given ("3" in TOML or a variable)."""
        return int(device) if isinstance(device, str) and device.strip().isdigit() else device


def read_audio(path: Path) -> np.ndarray:
    """A WAV/FLAC/... file as float32 16 kHz mono (resampled and down-mixed by PyAV through faster-whisper)."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"no audio file {path}")
    from faster_whisper import decode_audio

    try:
        return decode_audio(str(path), sampling_rate=SAMPLE_RATE).astype(np.float32)
    except Exception as exc:  # PyAV raises its own family for corrupt files
        raise AudioError(f"cannot read {path} as audio ({type(exc).__name__}: {exc}); use WAV or FLAC") from None


def file_chunks(path: Path, realtime: bool = False, stop: threading.Event | None = None) -> Iterator[np.ndarray]:
    """A file played as if live: 32 ms chunks, optionally paced in real time."""
    audio = read_audio(path)
    started = time.monotonic()
    for offset in range(0, len(audio), CHUNK):
        if stop is not None and stop.is_set():
            return
        if realtime:
            time.sleep(max(0.0, started + offset / SAMPLE_RATE - time.monotonic()))
        yield audio[offset : offset + CHUNK]


def _sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio library itself is missing
        raise AudioError(f"PortAudio is missing ({exc}); install it: sudo apt-get install libportaudio2") from None
    return sounddevice


def list_devices() -> list[dict]:
    """Input devices: index, name, channels, default sample rate, and whether it is the default."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        default = sd.default.device[0]
    except sd.PortAudioError as exc:
        raise AudioError(f"cannot list audio devices ({exc})") from None
    return [{"index": i, "name": d["name"], "channels": d["max_input_channels"],
             "samplerate": d["default_samplerate"], "default": i == default}
            for i, d in enumerate(devices) if d["max_input_channels"] > 0]  # fmt: skip


def microphone_chunks(
    options: AudioOptions, stop: threading.Event, mute: threading.Event | None = None
) -> Iterator[np.ndarray]:
    """Chunks from the input device until ``stop`` is set; while ``mute`` is set (the assistant is speaking)
    the audio is dropped at the source. No device, or one that disappears mid-stream, is logged and retried with
    backoff (1 s, 2 s, 4 s ... up to ``retry_max_s``), so the daemon keeps running until the device is back."""
    sd = _sounddevice()
    delay = 1.0
    while not stop.is_set():
        chunks: queue.Queue = queue.Queue(maxsize=500)
        failed = threading.Event()

        def callback(indata, frames, when, status, chunks: queue.Queue = chunks) -> None:
            if status.input_overflow:
                logger.warning("audio input overflow: the machine is too busy, some audio was lost")
            if mute is not None and mute.is_set():
                return
            try:
                chunks.put_nowait(indata[:, 0].copy())
            except queue.Full:
                pass

        try:
            stream = sd.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32", blocksize=CHUNK,
                                    device=options.device, callback=callback,
                                    finished_callback=failed.set)  # fmt: skip
            stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            logger.error("cannot open the microphone %s (%s); retrying in %.0f s. `skillcall devices` lists the "
                         "inputs; set daemon.audio.device to one", "(default)" if options.device is None else
                         repr(options.device), exc, delay)  # fmt: skip
            stop.wait(delay)
            delay = min(delay * 2, options.retry_max_s)
            continue
        delay = 1.0
        logger.info("listening on %s", stream.device)
        with stream:
            while not stop.is_set():
                try:
                    yield chunks.get(timeout=0.5)
                except queue.Empty:
                    if failed.is_set() or not stream.active:
                        logger.error("the microphone stopped delivering audio; reopening it")
                        break
        stop.wait(delay)
