"""Audio in: the microphone (sounddevice, 16 kHz mono) and files (any rate and channel count), as one stream of
float32 chunks, so a WAV goes through exactly the path live speech takes."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def mono_float(audio: np.ndarray) -> np.ndarray:
    """Audio as the segmenter and Whisper take it: 1-D float32 in [-1, 1]. Multi-channel or integer samples are an
    ``AudioError`` (they would be heard as noise); a NaN or infinite sample (a driver glitch) becomes silence or
    full scale, so it cannot deafen the VAD's carried state."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise AudioError(f"expected 1-D mono audio, got shape {audio.shape}; mix down first, e.g. audio.mean(axis=1)")
    if not np.issubdtype(audio.dtype, np.floating):
        raise AudioError(f"expected float samples in [-1, 1], got {audio.dtype}; convert int16 audio with "
                         "audio.astype(np.float32) / 32768")  # fmt: skip
    audio = audio.astype(np.float32, copy=False)
    return audio if np.isfinite(audio).all() else np.nan_to_num(audio, nan=0.0, posinf=1.0, neginf=-1.0)


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


def _rescan(sd) -> None:
    """Have PortAudio list the devices again, so that a microphone plugged in after start is found: it reads the
    list once, when it starts. Only while no stream is open."""
    try:
        sd._terminate()
        sd._initialize()
    except (AttributeError, sd.PortAudioError) as exc:  # another sounddevice release: retry with the old list
        logger.debug("cannot rescan the audio devices: %s", exc)


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


def _check_settings(sd: Any, device: str | int | None) -> None:
    """An input that exists but cannot record 16 kHz mono (an ALSA ``hw:`` device fixed at 48 kHz) is an
    ``AudioError`` at once: retrying would never help. A missing input is left to the retries."""
    try:
        name = sd.query_devices(device, "input")["name"]
    except (sd.PortAudioError, ValueError):
        return
    try:
        sd.check_input_settings(device=device, channels=1, dtype="float32", samplerate=SAMPLE_RATE)
    except (sd.PortAudioError, ValueError) as exc:
        if isinstance(exc, sd.PortAudioError) and exc.args[1:2] not in ((-9997,), (-9998,)):
            return  # busy or gone (not a bad rate or channel count): the retries deal with it
        raise AudioError(f"the microphone {name!r} cannot record {SAMPLE_RATE} Hz mono ({exc}); choose another "
                         "input from `skillcall devices` (the system default resamples)") from None  # fmt: skip


def microphone_chunks(
    options: AudioOptions, stop: threading.Event, mute: threading.Event | None = None
) -> Iterator[np.ndarray]:
    """Chunks from the input device until ``stop`` is set; while ``mute`` is set (the assistant is speaking)
    the audio is dropped at the source. No device, or one that disappears mid-stream, is logged and retried with
    backoff (1 s, 2 s, 4 s ... up to ``retry_max_s``), so the daemon keeps running until the device is back."""
    sd = _sounddevice()
    delay = 1.0
    while not stop.is_set():
        _check_settings(sd, options.device)
        chunks: queue.Queue = queue.Queue(maxsize=500)
        failed = threading.Event()
        lost = {"overflow": 0, "backlog": 0}  # counted in the real-time callback, logged by the reader

        def callback(indata, frames, when, status, chunks: queue.Queue = chunks, lost: dict = lost) -> None:
            if status.input_overflow:
                lost["overflow"] += 1
            if mute is not None and mute.is_set():
                return
            try:
                chunks.put_nowait(indata[:, 0].copy())
            except queue.Full:
                lost["backlog"] += 1

        stream = None
        try:
            stream = sd.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32", blocksize=CHUNK,
                                    device=options.device, callback=callback,
                                    finished_callback=failed.set)  # fmt: skip
            stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            if stream is not None:
                stream.close()  # a device only one program may hold stays free for the retry
            logger.error("cannot open the microphone %s (%s); retrying in %.0f s. `skillcall devices` lists the "
                         "inputs; set daemon.audio.device to one", "(default)" if options.device is None else
                         repr(options.device), exc, delay)  # fmt: skip
            stop.wait(delay)
            delay = min(delay * 2, options.retry_max_s)
            _rescan(sd)
            continue
        delay = 1.0
        logger.info("listening on %s", stream.device)
        with stream:
            reported = dict(lost)
            while not stop.is_set():
                now = dict(lost)  # one snapshot: the callback may count on meanwhile
                if now != reported:
                    logger.warning("audio lost: %d block(s) to input overflow (the machine is too busy), %d while "
                                   "a turn was handled", now["overflow"] - reported["overflow"],
                                   now["backlog"] - reported["backlog"])  # fmt: skip
                    reported = now
                try:
                    yield chunks.get(timeout=0.5)
                except queue.Empty:
                    if failed.is_set() or not stream.active:
                        logger.error("the microphone stopped delivering audio; reopening it")
                        break
        stop.wait(delay)
        _rescan(sd)  # unplugged: it may come back under a new index
