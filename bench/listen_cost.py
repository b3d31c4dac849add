"""What listening costs: the daemon's CPU use over minutes of a quiet room and of talk not meant for it.

    .venv/bin/python bench/listen_cost.py [--minutes 5]

Makes two recordings of ``--minutes`` each: a quiet room (low noise, no speech) and a room where people talk
without the wake phrase (espeak-ng sentences, a few seconds apart). Plays each through ``skillcall listen --input
FILE --realtime --wake --dry-run`` — the microphone's path, paced in real time, the wake phrase required as for a
microphone — and reads the process's CPU time (user + system, its skill workers included) at the end. A third run
on two seconds of silence measures the start-up (loading the models), which is subtracted. Prints CPU seconds and
the share of one core over the recording. On a laptop on battery the quiet room is what matters: it should stay
near zero. Takes about twice ``--minutes``; run it on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from assistant.audio import SAMPLE_RATE as RATE  # noqa: E402
from assistant.audio import read_audio  # noqa: E402
from tests.speech import write_wav  # noqa: E402

TALK = [
    "I told her the train was late again this morning.",
    "Did you see the match last night? It went to penalties.",
    "We should paint the hallway before the winter comes.",
    "My brother is moving to a new flat next month.",
    "The soup needs more salt, I think, and maybe some pepper.",
    "Have you finished the book I lent you in the spring?",
    "They are building a new bridge over the river.",
    "Let's walk the dog after dinner if it stays dry.",
]


def spoken(text: str, folder: Path) -> np.ndarray:
    """``text`` said by espeak-ng at 160 words a minute, as 16 kHz mono."""
    path = folder / f"{abs(hash(text))}.wav"
    subprocess.run(["espeak-ng", "-s", "160", "-w", str(path), text], check=True, capture_output=True)
    return read_audio(path)


def recordings(seconds: float, folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    quiet = rng.normal(0, 0.003, int(seconds * RATE)).astype(np.float32)  # a fan, a fridge: about -50 dBFS
    talk = quiet.copy()
    clips = [spoken(text, folder) for text in TALK]
    at, index = int(1.0 * RATE), 0
    while at < len(talk):
        clip = clips[index % len(clips)][: len(talk) - at]
        talk[at : at + len(clip)] += 0.7 * clip
        at += len(clip) + int(rng.uniform(2.0, 6.0) * RATE)
        index += 1
    return {"start-up": write_wav(folder / "start.wav", np.zeros(2 * RATE, np.float32)),
            "quiet room": write_wav(folder / "quiet.wav", quiet),
            "talk without the wake phrase": write_wav(folder / "talk.wav", talk)}  # fmt: skip


def cpu_seconds(path: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one ``listen`` run over ``path``, its children included; its turns go to a
    history beside the recording, not yours."""
    env = {**os.environ, "SKILLCALL_DAEMON__HISTORY_DB": str(path.with_suffix(".db"))}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "assistant.cli", "listen", "--input", str(path), "--realtime", "--wake",
                    "--dry-run", "--json"], check=True, stdout=subprocess.DEVNULL, env=env)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="Length of each recording.")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} vCPU, {platform.processor() or platform.platform()}")
    with tempfile.TemporaryDirectory() as folder:
        files = recordings(60 * args.minutes, Path(folder))
        startup, _ = cpu_seconds(files.pop("start-up"))
        print(f"start-up (loading the models, 2 s of silence): {startup:.1f} CPU s")
        for name, path in files.items():
            cpu, wall = cpu_seconds(path)
            listening = max(0.0, cpu - startup)
            print(f"{name}: {listening:.1f} CPU s over {60 * args.minutes:.0f} s of audio = "
                  f"{100 * listening / (60 * args.minutes):.1f} % of one core (run took {wall:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
