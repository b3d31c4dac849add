"""Audio in: files at any rate and channel count, and the real sounddevice path through a virtual microphone.

The virtual microphone is an ALSA ``file`` plugin reading a raw feed (no sound card needed); PortAudio reads
ALSA's configuration when sounddevice is imported, so those tests run in a subprocess with HOME pointing at a
temporary ``.asoundrc``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from assistant.audio import CHUNK, AudioError, AudioOptions, file_chunks, microphone_chunks, read_audio
from tests.speech import join, speak, write_wav

ROOT = Path(__file__).resolve().parent.parent


def test_any_rate_and_channels_become_16k_mono(tmp_path):
    tone = np.sin(np.arange(44100) / 44100 * 2 * np.pi * 440).astype(np.float32) * 0.5
    audio = read_audio(write_wav(tmp_path / "a.wav", tone, rate=44100, channels=2))
    assert audio.dtype == np.float32 and abs(len(audio) - 16000) <= 2
    assert 0.45 < np.abs(audio).max() < 0.55


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(AudioError, match="no audio file"):
        read_audio(tmp_path / "missing.wav")
    (tmp_path / "bad.wav").write_bytes(b"RIFF nonsense")
    with pytest.raises(AudioError, match="cannot read .*bad.wav as audio"):
        read_audio(tmp_path / "bad.wav")


def test_file_chunks_stream_like_a_microphone(tmp_path):
    path = write_wav(tmp_path / "a.wav", np.zeros(16000 // 2, dtype=np.float32))
    chunks = list(file_chunks(path))
    assert sum(len(c) for c in chunks) == 8000 and all(len(c) == CHUNK for c in chunks[:-1])
    started = time.monotonic()
    list(file_chunks(path, realtime=True))
    assert time.monotonic() - started >= 0.45


def _virtual_microphone(tmp_path: Path, audio: np.ndarray) -> dict:
    feed = tmp_path / "feed.raw"
    (np.clip(audio, -1, 1) * 32767).astype("<i2").tofile(feed)
    (tmp_path / ".asoundrc").write_text(
        f'pcm.wavfile {{ type file; slave.pcm "null"; file "/dev/null"; infile "{feed}"; format "raw" }}\n'
        'pcm.vmic { type plug; slave { pcm "wavfile"; format S16_LE; rate 16000; channels 1 } }\n'
    )
    return {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}


def _python(script: str, folder, env: dict) -> subprocess.CompletedProcess:
    """Run ``script`` in a Python of its own (PortAudio reads the ALSA configuration once a process)."""
    done = subprocess.run([sys.executable, "-c", script], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def test_the_microphone_path_reads_the_virtual_device(tmp_path):
    """Real sounddevice/PortAudio/ALSA: the device opens by name and delivers 512-sample float32 chunks whose
    samples are the feed's, bit for bit. (The file plugin is unclocked: PortAudio reads it far faster than real
    time and skips blocks, so only windows of the feed are checked, not one continuous stretch.)"""
    feed = np.random.default_rng(0).uniform(-0.5, 0.5, 32000).astype(np.float32)
    env = _virtual_microphone(tmp_path, feed)
    script = (
        "import threading, numpy as np\n"
        "from assistant.audio import AudioOptions, microphone_chunks, list_devices\n"
        "print([d['name'] for d in list_devices()])\n"
        "stop = threading.Event(); got = []\n"
        "for chunk in microphone_chunks(AudioOptions(device='vmic'), stop):\n"
        "    got.append(chunk)\n"
        "    if len(got) == 40: stop.set()\n"
        "np.save('got.npy', np.stack(got))\n"
    )
    done = _python(script, tmp_path, env)
    assert "vmic" in done.stdout
    chunks = np.load(tmp_path / "got.npy")
    assert chunks.shape == (40, CHUNK) and chunks.dtype == np.float32
    sent = (feed * 32767).astype("<i2") / 32768
    windows = {sent[i : i + 16].tobytes() for i in range(len(sent) - 16)}
    assert np.array_equal(chunks[0], sent[:CHUNK])  # the first block arrives in order, bit-exact
    assert all(chunk[:16].astype(np.float64).tobytes() in windows for chunk in chunks)


def test_a_microphone_plugged_in_after_start_is_found(tmp_path):
    """PortAudio lists the devices once when it starts; the retry has it list them again (ALSA rereads its
    configuration then), so a device that appears later opens."""
    feed = np.random.default_rng(1).uniform(-0.5, 0.5, 32000).astype(np.float32)
    env = _virtual_microphone(tmp_path, feed)
    (tmp_path / ".asoundrc").rename(tmp_path / "later")
    script = (
        "import threading, os\n"
        "from assistant.audio import AudioOptions, microphone_chunks\n"
        "stop = threading.Event(); threading.Timer(20, stop.set).start()\n"
        "threading.Timer(1.5, os.rename, ('later', '.asoundrc')).start()  # plugged in after start\n"
        "got = 0\n"
        "for chunk in microphone_chunks(AudioOptions(device='vmic', retry_max_s=1), stop):\n"
        "    got += 1\n"
        "    if got == 5: stop.set()\n"
        "print('chunks', got)\n"
    )
    done = _python(script, tmp_path, env)
    assert "chunks 5" in done.stdout, done.stderr
    assert "cannot open the microphone 'vmic'" in done.stderr  # it was missing at first


def test_a_missing_device_is_retried_not_fatal(caplog):
    stop = threading.Event()
    threading.Timer(3.0, stop.set).start()  # room for a second try 1 s after the first, PortAudio's start-up included
    with caplog.at_level("ERROR"):
        chunks = list(microphone_chunks(AudioOptions(device="no such microphone", retry_max_s=1), stop))
    assert chunks == []
    assert "cannot open the microphone 'no such microphone'" in caplog.text and "`skillcall devices`" in caplog.text
    assert caplog.text.count("cannot open the microphone") >= 2  # tried again after the delay, until stopped
    assert AudioOptions(device="3").device == 3 and AudioOptions(device="USB Mic").device == "USB Mic"


def test_an_input_that_cannot_record_16_khz_is_an_error_not_a_retry(monkeypatch):
    import sounddevice

    def fixed_rate(**settings):  # what PortAudio says of an ALSA hw: device fixed at 48 kHz
        raise sounddevice.PortAudioError("Invalid sample rate", -9997)

    monkeypatch.setattr(sounddevice, "query_devices", lambda device=None, kind=None: {"name": "hw:1,0"})
    monkeypatch.setattr(sounddevice, "check_input_settings", fixed_rate)
    with pytest.raises(AudioError, match=r"'hw:1,0' cannot record 16000 Hz mono .*`skillcall devices`"):
        next(microphone_chunks(AudioOptions(device="hw:1,0"), threading.Event()))


def test_a_stop_while_the_models_load_ends_the_daemon_at_once_and_cleanly(tmp_path):
    """SIGTERM (or Ctrl-C) during loading, when a first run merges the routers for tens of seconds, ends the
    process there with exit status 0, before it ever listens."""
    wav = tmp_path / "said.wav"
    write_wav(wav, speak("What time is it?", tmp_path))
    env = {**os.environ, "SKILLCALL_CONFIG": str(tmp_path / "config.toml"),
           "SKILLCALL_DAEMON__HISTORY_DB": str(tmp_path / "history.db")}  # fmt: skip
    process = subprocess.Popen([sys.executable, "-m", "assistant.cli", "listen", "--input", str(wav), "--dry-run"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = iter(process.stderr.readline, "")
    assert "loading the models" in (line.strip() for line in lines)  # after any warnings about the config
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert err.strip() == "stopped" and out == ""  # nothing heard, nothing routed: it never got to listen


def test_listen_on_the_virtual_microphone_runs_and_stops_cleanly(tmp_path):
    """The daemon on real sounddevice: it opens the device by name, survives a device that delivers garbage
    (the unclocked feed loops its end), and SIGTERM stops it with exit status 0."""
    said = ["What is two plus two?", "Stop the timer."]
    env = _virtual_microphone(tmp_path, join([speak(s, tmp_path) for s in said], pause_s=1.0))
    env["SKILLCALL_CONFIG"] = str(tmp_path / "config.toml")
    env["SKILLCALL_DAEMON__HISTORY_DB"] = str(tmp_path / "history.db")
    process = subprocess.Popen([sys.executable, "-m", "assistant.cli", "listen", "--device", "vmic", "--no-wake",
                                "--dry-run", "--json"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(20)
    assert process.poll() is None, process.communicate()[1]
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "stopped" in err and "Traceback" not in err
    assert "cannot open the microphone" not in err, err  # it opened the device by name (an error is only logged)
    for line in out.splitlines():  # what it made of the unclocked feed, if anything: well-formed turns
        assert {"text", "call", "transcribe_ms"} <= set(json.loads(line))
