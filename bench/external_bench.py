"""Router accuracy on words nobody on the project wrote, beside the test split: per skill and confused with what.

    .venv/bin/python bench/external_bench.py [--external FILE.jsonl ...] [--consult-margin M] [--misses N]
                                             [--json OUT.json]

Routes, with the configured router (``SKILLCALL_ROUTER__ROUTER_DIR=runs/x`` measures another), the test split of
the example files (the split the router's card names) and each external file of ``{"text", "call"}`` rows — by
default ``../shared/external/slurp_devel.jsonl``, commands people typed for a voice assistant (SLURP's devel split
mapped to our skills; a measuring stick, never training data) — twice: as written (lower case, no punctuation)
and as Whisper writes speech (a capital letter and a final "?" or "."). For each it prints exact-call and
skill-name accuracy with a 95 % interval, the per-skill table and the confusion of skills. ``--misses`` lists
misses to read (not to copy into example files). Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
from pathlib import Path

from assistant.config import load_config
from assistant.routers import load_router, read_card
from finetune.dataset import read_jsonl, router_test_split
from finetune.evaluate import EvalReport, evaluate
from skills import load_registry

EXTERNAL = Path(__file__).resolve().parent.parent.parent / "shared" / "external" / "slurp_devel.jsonl"
_QUESTION = re.compile(r"^(what|whats|what's|how|is|are|will|when|where|who|why|which|do|does|did|can|could|should|"
                       r"would|tell me|any)\b")  # fmt: skip


def as_whisper_writes(text: str) -> str:
    """``text`` with a capital letter and a final "?" (a question) or "." — Whisper's style for the same words."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("?" if _QUESTION.match(text) else ".")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--external", type=Path, nargs="*", default=[EXTERNAL], help="JSONL rows {text, call}.")
    parser.add_argument("--consult-margin", type=float, default=None,
                        help="When an ensemble's other routers are asked (0 = never; default: as configured).")
    parser.add_argument("--known-values", action="store_true",
                        help="Let runapp name only apps installed here, as routing does (off: rows may name others).")
    parser.add_argument("--misses", type=int, default=0, help="List this many misses per set.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures to this file.")
    args = parser.parse_args()

    config = load_config()
    registry = load_registry(user_dir=config.skills_dir)
    options = config.router.model_copy(update={"kind": "llama.cpp", "known_values": args.known_values})
    if args.consult_margin is not None:
        options = options.model_copy(update={"consult_margin": args.consult_margin})
    card = read_card(options.router_dir)
    sets = {"test split": router_test_split(config.example_dirs(), registry, card)}
    for path in args.external:
        rows = read_jsonl(path, ("text", "call"))
        sets[f"{path.name}"] = rows
        sets[f"{path.name}, as Whisper writes"] = [{**r, "text": as_whisper_writes(r["text"])} for r in rows]
    print(f"machine: {platform.machine()}, {os.cpu_count()} vCPU; router: {options.router_dir} "
          f"(consult_margin {options.consult_margin}, known_values {options.known_values})")  # fmt: skip
    router = load_router(options, registry)
    router.route("warm up")
    figures = {}
    for name, rows in sets.items():
        report = evaluate(router, rows, registry)
        figures[name] = report.summary()
        print_report(name, report, args.misses)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


def print_report(name: str, report: EvalReport, misses: int) -> None:
    low, high = report.exact_interval
    print(f"\n== {name}: {report.rows} rows")
    print(f"exact {report.exact_accuracy:.3f} ({low:.3f}–{high:.3f})  skill {report.skill_accuracy:.3f}  "
          f"arguments {report.argument_accuracy:.3f}  p50 {1000 * report.latency(0.5):.0f} ms")
    single, compound = report.single_summary(), report.compound
    print(f"single-call rows {single['exact']}/{single['rows']} exact, {single['split']} split into several calls"
          + (f"; compound rows {compound['exact']}/{compound['rows']} exact ({compound['skill']} with the right "
             "skills in order)" if compound["rows"] else ""))  # fmt: skip
    skills = sorted(set(report.confusion) | {g for c in report.confusion.values() for g in c})
    short = {s: s[:7] for s in skills}
    print(f"{'expected':14}{'rows':>5}{'exact':>7}{'skill':>7}   routed to: " + " ".join(f"{short[s]:>7}" for s in skills))
    for skill in sorted(report.per_skill):
        stats = report.per_skill[skill]
        cells = " ".join(f"{report.confusion[skill][s] or '.':>7}" for s in skills)
        print(f"{skill:14}{stats['rows']:>5}{stats['exact'] / stats['rows']:>7.2f}"
              f"{stats['skill'] / stats['rows']:>7.2f}               {cells}")
    for miss in report.misses[:misses]:
        print(f"  miss: {miss.text!r}: expected {miss.expected}, got {miss.got}")


if __name__ == "__main__":
    main()
