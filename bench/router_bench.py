"""Router benchmark: accuracy and latency of the configured router (the shipped one by default) and the untuned base.

    .venv/bin/python bench/router_bench.py [--rows N] [--threads T] [--data FILE.jsonl] [--first-guess] [--busy]

The router is the one the config names (the config file and ``SKILLCALL_*`` variables, e.g.
``SKILLCALL_ROUTER__ROUTER_DIR=runs/x`` measures another trained router), run by llama.cpp. Prints load time,
exact/skill accuracy on the rows `skillcall eval` reads (the test split with the router's own dataset seed, the
user's skills and example folders included), and per-utterance routing latency p50/p95 with the prompt prefix kept
(warm, how the daemon runs) and, on the first 40 rows, with the KV cache cleared and the prefix evaluated again
inside the timing (cold), beside the warm p50 of the same rows. The load time includes merging the adapter into
a cached Q8_0 model when that is not cached yet (about 10 s; see `router.merge`). Run it on an idle machine: two
jobs at once on this 2-vCPU box halve the figures.

``--busy`` measures instead how the router copes with a busy desktop: for each thread count (``--threads``, else 1,
2 and what ``router.threads`` unset picks here), the warm p50 and p95 of the rows alone and then with one other
process spinning on a core, side by side.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import time

import llama_cpp

from assistant.config import load_config
from assistant.routers import RouterOptions, default_threads, load_router, read_card
from finetune.dataset import read_jsonl, router_test_split
from finetune.evaluate import evaluate, percentile
from skills import load_registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=0, help="Use only the first N rows (0 = all).")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data", default=None, help='JSONL rows {"text", "call"}; default: the test split.')
    parser.add_argument("--no-base", action="store_true", help="Skip the untuned base.")
    parser.add_argument("--no-merge", action="store_true", help="Apply the adapter at run time (no merged Q8_0).")
    parser.add_argument("--draft-tokens", type=int, default=None, help="Drafting bound (0 = off; default: as shipped).")
    parser.add_argument("--consult-margin", type=float, default=None,
                        help="When an ensemble's other routers are asked (0 = never; default: as configured).")
    parser.add_argument("--known-values", action="store_true",
                        help="Let runapp name only apps installed here, as routing does (off, as in eval).")
    parser.add_argument("--first-guess", action="store_true",
                        help="Only compare the shipped router with and without its first guess (skill_words), "
                             "routing each row with both in turn so the host's drift cancels.")  # fmt: skip
    parser.add_argument("--busy", action="store_true",
                        help="Only compare latency alone and beside one process that keeps a core busy.")
    args = parser.parse_args()

    config = load_config()
    registry = load_registry(user_dir=config.skills_dir)
    rows = read_jsonl(args.data, ("text", "call")) if args.data else \
        router_test_split(config.example_dirs(), registry, read_card(config.router.router_dir))
    rows = rows[: args.rows] if args.rows else rows
    print(f"machine: {platform.machine()}, {os.cpu_count()} vCPU, {platform.processor() or platform.platform()}")
    print(f"llama.cpp: {llama_cpp.llama_print_system_info().decode().strip()}")  # the CPU features it was built for
    print(f"rows: {len(rows)}")
    configured = configured_router(args.threads).model_copy(update={"known_values": args.known_values})
    if args.first_guess:
        compare_first_guess(rows, registry, configured)
        return
    if args.busy:
        compare_busy(rows, registry, configured, [args.threads] if args.threads else [1, 2, default_threads()])
        return
    tuned = {"merge": False} if args.no_merge else {}
    if args.draft_tokens is not None:
        tuned["draft_tokens"] = args.draft_tokens
    if args.consult_margin is not None:
        tuned["consult_margin"] = args.consult_margin
    variants = {"tuned": configured.model_copy(update=tuned)}
    if not args.no_base:  # the same prompt as the tuned router, as `skillcall eval` builds it
        card = read_card(configured.router_dir)
        variants["untuned base"] = variants["tuned"].model_copy(
            update={"router_dir": None, "template": card and card.template, "skill_list": card and card.skill_list})
    for name, options in variants.items():
        started = time.perf_counter()
        router = load_router(options, registry)
        load_s = time.perf_counter() - started
        router.route("warm up")
        report = evaluate(router, rows, registry)
        warm = report.latencies
        results = router.route_batch([r["text"] for r in rows[:60]])
        generated = statistics.fmean(r.generated_tokens for r in results)
        forced = statistics.fmean(r.forced_tokens for r in results)
        drafted = statistics.fmean(r.drafted_tokens for r in results)
        evaluations = statistics.fmean(r.evaluations for r in results)
        prompt = statistics.fmean(r.prompt_tokens for r in results)
        consulted = statistics.fmean(r.consulted > 0 for r in results)
        cold = []
        for row in rows[:40]:
            started = time.perf_counter()
            for session in [router.session, *router.members]:  # nothing cached: each prompt prefix is evaluated
                session.start(router.prefix_tokens)  # again, inside the timing
            router.route(row["text"])
            cold.append(time.perf_counter() - started)
        print(f"\n[{name}] load {load_s:.2f} s")
        low, high = report.exact_interval
        print(f"  exact-call accuracy {report.exact_accuracy:.4f} ({low:.3f}–{high:.3f})  skill accuracy "
              f"{report.skill_accuracy:.4f}  argument accuracy {report.argument_accuracy:.4f}")
        print(f"  warm latency p50 {1000 * percentile(warm, .5):.1f} ms  p95 {1000 * percentile(warm, .95):.1f} ms  "
              f"mean {1000 * statistics.fmean(warm):.1f} ms")
        print(f"  first {len(cold)} rows: cold p50 {1000 * percentile(cold, .5):.1f} ms (KV cache cleared, prefix "
              f"evaluated again) against warm p50 {1000 * percentile(warm[: len(cold)], .5):.1f} ms")
        print(f"  per call: {prompt:.1f} prompt tokens; {generated:.1f} generated ({drafted:.1f} of them drafted) + "
              f"{forced:.1f} forced tokens in {evaluations:.2f} llama.cpp evaluations" + (
                  f"; the ensemble's {len(router.members)} other routers asked on {100 * consulted:.0f} % of them"
                  if router.members else ""))  # fmt: skip
        for miss in report.misses[:15]:
            print(f"  miss: {miss.text!r}: expected {miss.expected}, got {miss.got}")


def configured_router(threads: int | None) -> RouterOptions:
    """The config's router options, run by llama.cpp (with ``threads`` when given)."""
    options = load_config().router.model_copy(update={"kind": "llama.cpp"})
    return options.model_copy(update={"threads": threads}) if threads else options


def spin() -> None:
    """A desktop's other program at its worst: one core, all the time."""
    while True:
        pass


def compare_busy(rows: list[dict], registry, options: RouterOptions, thread_counts: list[int]) -> None:
    """Warm p50/p95 of each thread count with the machine to itself, then with one spinning process beside it."""
    print(f"busy: one other process spinning on a core; {len(rows)} rows; router.threads unset picks "
          f"{default_threads()} here")  # fmt: skip
    for threads in dict.fromkeys(thread_counts):
        router = load_router(options.model_copy(update={"threads": threads}), registry)
        router.route("warm up")
        figures = {}
        for condition in ("idle", "busy"):
            other = multiprocessing.Process(target=spin, daemon=True) if condition == "busy" else None
            if other:
                other.start()
                time.sleep(1.0)  # let the scheduler see it
            try:
                seconds = [router.route_result(row["text"]).seconds for row in rows]
            finally:
                if other:
                    other.terminate()
                    other.join()
            figures[condition] = (percentile(seconds, 0.5), percentile(seconds, 0.95))
        (idle50, idle95), (busy50, busy95) = figures["idle"], figures["busy"]
        print(f"  threads {threads}: idle p50 {1000 * idle50:.1f} ms p95 {1000 * idle95:.1f} ms; busy p50 "
              f"{1000 * busy50:.1f} ms p95 {1000 * busy95:.1f} ms ({busy50 / idle50:.2f}x, {busy95 / idle95:.2f}x)")


def compare_first_guess(rows: list[dict], registry, options: RouterOptions, repeats: int = 2) -> None:
    """p50 and evaluations a call of the router with and without the whole-call guess made before the model
    reads the utterance; each row is routed by both, one after the other."""
    routers = {"with first guess": load_router(options, registry), "without": load_router(options, registry)}
    routers["without"].drafter.skill_words = {}  # no guess of the skill before the model reads the words
    seconds: dict[str, list[float]] = {name: [] for name in routers}
    evaluations: dict[str, list[int]] = {name: [] for name in routers}
    for row in rows * repeats:
        for name, router in routers.items():
            result = router.route_result(row["text"])
            seconds[name].append(result.seconds)
            evaluations[name].append(result.evaluations)
    for name in routers:
        print(f"  {name}: p50 {1000 * percentile(seconds[name], .5):.1f} ms  "
              f"mean {1000 * statistics.fmean(seconds[name]):.1f} ms  "
              f"{statistics.fmean(evaluations[name]):.2f} evaluations a call")


if __name__ == "__main__":
    main()
