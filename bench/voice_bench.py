"""Voice benchmark: held-out commands spoken by natural voices and by espeak-ng, clean and in noise, through the
daemon's own path (VAD, Whisper, wake phrase, router), as `skillcall listen --dry-run` hears them.

    .venv/bin/python bench/voice_bench.py [--conditions clean,20,10,5,espeak] [--realtime] [--commands N]
                                          [--model M] [--beam-size B] [--window S|none] [--early-ms MS]
                                          [--end-silence-ms MS]

The commands are ``bench/voice/commands.tsv``: 60 rows of the test split (never trained on), each with its call.
Each is spoken by one of Kokoro-82M's 28 English voices in turn (US/UK, female/male; speeds 0.9, 1.0 and 1.15 in
turn), or by espeak-ng, between 0.6 s of silence before and 1.2 s after; "20", "10", "5" add a room's pink noise
at that SNR (dB, against the speech) over the whole stream. Clips are cached (tests/speech.py), so a second run
speaks nothing.

Printed per condition: word error rate, commands routed exactly right (numbers compared by value: Whisper writes
"10" where the row says "ten"), and latency p50/p95 of the VAD's end-of-speech delay, transcription, routing and
**end of speech -> call ready**. With ``--realtime`` the audio is fed at the pace a microphone gives it, and end of
speech -> call ready is measured on the wall clock from the moment the clip ends; without it, it is the daemon's
own ``ready_ms``. The shipped router and the bundled Whisper with their default options, whatever the config says,
except that runapp may name any program (``router.known_values`` off), as the rows name apps this machine lacks.
Run it on an idle machine; compare timings only within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.daemon import Daemon, DaemonOptions  # noqa: E402
from assistant.routers import RouterOptions, load_router  # noqa: E402
from assistant.transcribe import TranscriberOptions, load_transcriber  # noqa: E402
from finetune.evaluate import percentile  # noqa: E402
from skills import SkillCall, load_registry  # noqa: E402
from skills.spoken import read_number, tokenize  # noqa: E402
from tests.speech import RATE, natural_voices, noisy, say, speak, trim  # noqa: E402

COMMANDS = Path(__file__).resolve().parent / "voice" / "commands.tsv"
SPEEDS = (0.9, 1.0, 1.15)
LEAD_S, TAIL_S, CHUNK = 0.6, 1.2, 512


def by_value(text: str) -> list[str]:
    """Words with numbers as values: "ten minutes", "10 minutes" and "10 minute" read alike."""
    tokens, out, i = tokenize(text), [], 0
    while i < len(tokens):
        number = read_number(tokens, i)
        if number is not None and number[1] > i:
            out.append(f"{number[0]:g}")
            i = number[1]
        else:
            out.append(re.sub(r"s$", "", tokens[i]) if len(tokens[i]) > 3 else tokens[i])
            i += 1
    return out


def same_calls(heard: str | None, wanted: SkillCall, registry) -> bool:
    if heard is None:
        return False
    calls = registry.parse_calls(heard)
    return (
        len(calls) == 1
        and calls[0].name == wanted.name
        and calls[0].arguments.keys() == wanted.arguments.keys()
        and all(by_value(str(calls[0].arguments[k])) == by_value(str(v)) for k, v in wanted.arguments.items())
    )


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def clips(condition: str, commands: list[tuple[str, str]], folder: Path) -> list[tuple[np.ndarray, float]]:
    """Each command's stream (silence, speech, silence, and noise if asked) and where its speech ends (s)."""
    voices = natural_voices()
    if condition != "espeak" and not voices:
        sys.exit("Kokoro's voices are missing: see tests/speech.py (SKILLCALL_SPEECH_DIR)")
    out = []
    for i, (said, _) in enumerate(commands):
        clip = trim(speak(said, folder)) if condition == "espeak" else say(said, voices[i % len(voices)], SPEEDS[i % 3])
        stream = np.concatenate(
            [np.zeros(int(LEAD_S * RATE), np.float32), clip, np.zeros(int(TAIL_S * RATE), np.float32)]
        )
        if condition.isdigit():
            stream = noisy(stream, float(condition), seed=i, speech=clip)
        out.append((stream, LEAD_S + len(clip) / RATE))
    return out


def run_condition(streams, daemon: Daemon, realtime: bool) -> list[tuple[list, float | None]]:
    """Each stream's turns, and (realtime) the wall-clock seconds from the end of its speech to the first call."""
    results = []
    for stream, speech_end in streams:
        turns, ready = [], []
        daemon.emit = lambda turn, turns=turns, ready=ready: (turns.append(turn), ready.append(time.perf_counter()))
        chunks = [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]
        if realtime:
            started = time.perf_counter()

            def paced(chunks=chunks, started=started):
                for k, chunk in enumerate(chunks):
                    time.sleep(max(0.0, started + (k + 1) * CHUNK / RATE - time.perf_counter()))
                    yield chunk

            daemon.run(paced())
            latency = ready[0] - (started + speech_end) if ready else None
        else:
            daemon.run(chunks)
            latency = None
        results.append((turns, latency))
    return results


def report(condition: str, commands, results, registry) -> dict:
    stages: dict[str, list[float]] = {k: [] for k in ("vad_ms", "transcribe_ms", "route_ms", "ready_ms")}
    right = errors = words = split = 0
    misses = []
    for (said, call), (turns, latency) in zip(commands, results, strict=True):
        split += len(turns) > 1
        heard = " ".join(t.text for t in turns)
        errors += edit_distance(by_value(said), by_value(heard))
        words += len(by_value(said))
        ok = len(turns) == 1 and same_calls(turns[0].call, registry.parse(call), registry)
        right += ok
        if not ok:
            misses.append(f"said {said!r} heard {heard!r} -> {[t.call for t in turns]}")
        for turn in turns[:1]:
            for stage in stages:
                stages[stage].append(getattr(turn, stage))
        if latency is not None:
            stages["ready_ms"][-1] = 1000 * latency
    n = len(commands)
    row = {"condition": condition, "commands": n, "wer": round(errors / words, 3), "right": right,
           "accuracy": round(right / n, 3), "split": split}  # fmt: skip
    for stage, values in stages.items():
        if values:
            row[stage] = {"p50": round(percentile(values, 0.5), 1), "p95": round(percentile(values, 0.95), 1)}
    row["misses"] = misses
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--conditions",
        default="clean,20,10,5,espeak",
        help="clean (Kokoro voices), 20/10/5 (Kokoro with noise at that SNR, dB), espeak, "
        "text (the words typed: the router alone)",
    )
    parser.add_argument(
        "--realtime", action="store_true", help="Feed audio at a microphone's pace; wall-clock latency."
    )
    parser.add_argument("--commands", type=int, default=60, help="The first N commands.")
    parser.add_argument("--model", help="Whisper: 'bundled' (tiny.en), 'base' (the whisper-base extra) or a folder.")
    parser.add_argument("--beam-size", type=int, help="Whisper's beam (default: TranscriberOptions').")
    parser.add_argument(
        "--window", help="Whisper's short window, seconds, or 'none' for 30 s always (default: TranscriberOptions')."
    )
    parser.add_argument("--early-ms", type=int, help="The daemon's early start (default: DaemonOptions').")
    parser.add_argument("--end-silence-ms", type=int, help="The VAD's end of an utterance (default: VadOptions').")
    parser.add_argument("--misses", action="store_true", help="List what was not routed right.")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    commands = [tuple(line.split("\t")) for line in COMMANDS.read_text().splitlines() if line.strip()][: args.commands]
    transcribing = {}
    if args.model:
        transcribing["model"] = args.model
    if args.beam_size:
        transcribing["beam_size"] = args.beam_size
    if args.window:
        transcribing["window_s"] = None if args.window == "none" else float(args.window)
    given = {"early_ms": args.early_ms} if args.early_ms is not None else {}
    if args.end_silence_ms:
        given["vad"] = {"end_silence_ms": args.end_silence_ms}
    daemon_options = DaemonOptions(confirm="never", **given)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} vCPU; {len(commands)} commands; "
          f"transcriber {transcribing or 'defaults'}; daemon early_ms {daemon_options.early_ms}, end silence "
          f"{daemon_options.vad.end_silence_ms} ms; "
          f"{'realtime' if args.realtime else 'as fast as it goes'}")  # fmt: skip
    registry = load_registry()
    router = load_router(RouterOptions(known_values=False), registry)  # the rows name apps this machine lacks
    transcriber = load_transcriber(TranscriberOptions(**transcribing))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for condition in args.conditions.split(","):
            daemon = Daemon(registry, transcriber, router, daemon_options, dry_run=True, use_wake=False)
            router.route("warm up")
            if condition == "text":  # the words themselves, routed: what the voice path can reach at best
                results = [([daemon.handle_text(said)], None) for said, _ in commands]
            else:
                streams = clips(condition, commands, Path(folder))
                transcriber.transcribe(streams[0][0])  # warm-up
                results = run_condition(streams, daemon, args.realtime)
            row = report(condition, commands, results, registry)
            row["early_starts"] = daemon.early.started  # transcriptions begun in a pause; kept: the turns' early
            rows.append(row)
            latency = "  ".join(f"{k} {v['p50']:.0f}/{v['p95']:.0f}" for k, v in row.items()
                                if isinstance(v, dict))  # fmt: skip
            print(
                f"{condition:>6}: WER {row['wer']:.3f}  routed right {row['right']}/{row['commands']} "
                f"({row['accuracy']:.3f})  split {row['split']}  early starts {row['early_starts']}  p50/p95 ms: "
                f"{latency}",
                flush=True,
            )
            if args.misses:
                for miss in row["misses"]:
                    print(f"        {miss}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print(f"mean routed right: {statistics.fmean(r['accuracy'] for r in rows):.3f}")


if __name__ == "__main__":
    main()
