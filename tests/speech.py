"""Real speech for tests: espeak-ng speaks, faster-whisper's decoder resamples to 16 kHz mono."""

from __future__ import annotations

import shutil
import subprocess
import wave
from functools import lru_cache
from pathlib import Path

import numpy as np

RATE = 16_000


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
