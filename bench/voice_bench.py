"""Voice benchmark: spoken commands (espeak-ng) through VAD, Whisper, the router and the skills.

    .venv/bin/python bench/voice_bench.py [--wav OUT.wav] [--no-prompt-compare]

The shipped router and the bundled Whisper with their default options, whatever the config says, so that the
figures compare across machines. Prints per-stage latency p50/p95 (VAD end-of-speech delay, transcription, routing,
dispatch), end of speech -> dispatched p50/p95, and word error rate and routed accuracy with and without Whisper's
initial prompt. Skills run for real except the ones that would touch the desktop or the network (runapp, weather,
news, ask are routed only); dispatch and end-to-end figures count only the turns whose skill ran (not those, nor
other()). Whisper, the router and the skills (``Registry.warm``) are warmed up before each variant. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from assistant.daemon import Daemon, DaemonOptions
from assistant.routers import RouterOptions, load_router
from assistant.transcribe import TranscriberOptions, load_transcriber
from finetune.evaluate import percentile
from skills import SkillContext, SkillSettings, load_registry, sequences_equal

COMMANDS = [  # (what is said, the call it should route to)
    ("What's the weather like in London?", 'weather(location="London")'),
    ("Is it going to rain in Paris?", 'weather(location="Paris")'),
    ("What time is it in Tokyo?", 'timecheck(location="Tokyo")'),
    ("What's the time in New York?", 'timecheck(location="New York")'),
    ("Set a timer for five minutes.", 'timer(duration="five minutes")'),
    ("Set a timer for one hour and ten minutes.", 'timer(duration="one hour and ten minutes")'),
    ("Cancel the timer.", "cancel_timer()"),
    ("Stop the timer.", "cancel_timer()"),
    ("What is nine times nine?", 'math(question="nine times nine")'),
    ("What's fifteen percent of eighty?", 'math(question="fifteen percent of eighty")'),
    ("Add buy milk to my notes.", 'notes(action="add", note="buy milk")'),
    ("Read my notes.", 'notes(action="list")'),
    ("What's the latest news about football?", 'news(topic="football")'),
    ("Tell me the news.", "news()"),
    ("Open Firefox.", 'runapp(program="Firefox")'),
    ("Open the calculator.", 'runapp(program="calculator")'),
    ("Why is the sky blue?", 'ask(question="Why is the sky blue")'),
    ("Who wrote Romeo and Juliet?", 'ask(question="Who wrote Romeo and Juliet")'),
    ("Thanks, that's all.", "other()"),
    ("Honey, can you pass the salt?", "other()"),
]
DRY = {"runapp", "weather", "news", "ask"}


def words(text: str) -> list[str]:
    return "".join(c if c.isalnum() or c.isspace() else " " for c in text.casefold()).split()


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def spoken_file(folder: Path) -> np.ndarray:
    from faster_whisper import decode_audio

    parts = [np.zeros(8000, np.float32)]
    for i, (said, _) in enumerate(COMMANDS):
        path = folder / f"{i}.wav"
        subprocess.run(["espeak-ng", "-s", "160", "-w", str(path), said], check=True)
        parts += [decode_audio(str(path), sampling_rate=16000), np.zeros(int(1.2 * 16000), np.float32)]
    return np.concatenate(parts)


def run(audio: np.ndarray, prompt: str | None, router, notes_db: Path) -> tuple[list, list]:
    """All turns, and the turns whose skill ran."""
    registry = load_registry(SkillContext(SkillSettings(notes_db=notes_db)))
    router.registry = registry
    transcriber = load_transcriber(TranscriberOptions(initial_prompt=prompt))
    transcriber.transcribe(audio[: 3 * 16000])  # warm-up: neither variant pays a first call's set-up
    router.route("warm up")
    registry.warm()  # as `skillcall listen` does in the background at start
    turns, ran = [], []
    daemon = Daemon(registry, transcriber, router, DaemonOptions(confirm="never"), None, turns.append,
                    use_wake=False)  # fmt: skip
    original = daemon._dispatch

    def dispatch(call, turn):
        if call.name in DRY:
            return None
        ran.append(turn)
        return original(call, turn)

    daemon._dispatch = dispatch
    daemon.run([audio[i : i + 512] for i in range(0, len(audio), 512)])
    return turns, ran


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wav", type=Path, help="Also write the spoken test file here.")
    parser.add_argument("--no-prompt-compare", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} vCPU")
    with tempfile.TemporaryDirectory() as folder:
        audio = spoken_file(Path(folder))
        if args.wav:
            import soundfile

            soundfile.write(args.wav, audio, 16000)
        router = load_router(RouterOptions(), load_registry())
        variants = {"with initial prompt": TranscriberOptions().initial_prompt}
        if not args.no_prompt_compare:
            variants["without initial prompt"] = None
        for name, prompt in variants.items():
            turns, ran = run(audio, prompt, router, Path(folder) / f"notes-{len(name)}.db")
            print(f"\n[{name}] {len(turns)} utterances for {len(COMMANDS)} commands")
            if len(turns) == len(COMMANDS):
                errors = sum(edit_distance(words(s), words(t.text)) for (s, _), t in zip(COMMANDS, turns, strict=True))
                wer = errors / sum(len(words(s)) for s, _ in COMMANDS)
                registry = load_registry()
                right = sum(t.call is not None and sequences_equal(registry.parse_calls(t.call), registry.parse_calls(c))
                            for (_, c), t in zip(COMMANDS, turns, strict=True))  # fmt: skip
                print(f"  WER {wer:.3f}; routed exactly right {right}/{len(COMMANDS)}")
                for (said, call), turn in zip(COMMANDS, turns, strict=True):
                    if turn.call is None or not sequences_equal(registry.parse_calls(turn.call), registry.parse_calls(call)):
                        print(f"    said {said!r} heard {turn.text!r} -> {turn.call}")
            for stage in ("vad_ms", "transcribe_ms", "route_ms", "dispatch_ms", "total_ms"):
                values = [getattr(t, stage) for t in (ran if stage in ("dispatch_ms", "total_ms") else turns)]
                if values:
                    print(f"  {stage:14} p50 {percentile(values, .5):7.1f}  p95 {percentile(values, .95):7.1f}  "
                          f"mean {statistics.fmean(values):7.1f}  (n={len(values)})")


if __name__ == "__main__":
    main()
