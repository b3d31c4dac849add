"""Retraining benchmark: a skill a user adds, learnt from the shipped router (``--init``) or from fresh weights.

    .venv/bin/python bench/retrain_bench.py [--scratch] [--seed S] [--epochs E] [--out runs/retrain]

Adds the README's ``greet`` skill (bench/greet/: the function and 262 example rows) to the built-in skills, writes
the splits, trains as ``skillcall train --init router [--epochs E] [--seed S]`` does (by default one epoch from the
shipped router) and, with ``--scratch``, as ``skillcall train [--seed S]`` does (the defaults, from fresh weights).
Then routes the test and validation splits with the shipped router and each retrained one, and prints the
exact-call and skill-name accuracy over the built-in skills' rows (the rows the shipped router is measured on) and
over greet's, with each training's wall time. About 11 minutes here, 27 with ``--scratch``; run it on an idle
machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from assistant.routers import RouterOptions, load_router
from finetune.dataset import DatasetOptions, build_dataset, read_jsonl
from finetune.evaluate import evaluate
from finetune.examples import EXAMPLES_DIR, load_examples
from finetune.train import ROUTER_DIR, TrainOptions, train
from skills import load_registry

GREET = Path(__file__).resolve().parent / "greet"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/retrain"), help="Folder for the splits and routers.")
    parser.add_argument("--scratch", action="store_true", help="Also train from fresh weights (the defaults).")
    parser.add_argument("--seed", type=int, default=0, help="Training seed (the splits stay seed 0's).")
    parser.add_argument("--epochs", type=float, default=None, help="Epochs from the shipped router (default: 1).")
    args = parser.parse_args()

    registry = load_registry(user_dir=GREET)
    data = args.out / "data"
    build_dataset(load_examples([EXAMPLES_DIR, GREET], registry), DatasetOptions(data))
    routers, minutes = {"shipped": ROUTER_DIR}, {}
    gentle = {"epochs": args.epochs} if args.epochs else {}  # unset: --init's own default
    variants = {"--init router": TrainOptions(data=data, out=args.out / "init", init=ROUTER_DIR, seed=args.seed,
                                              progress=True, **gentle)}  # fmt: skip
    if args.scratch:
        variants["fresh weights"] = TrainOptions(data=data, out=args.out / "scratch", seed=args.seed, progress=True)
    for name, options in variants.items():
        started = time.perf_counter()
        train(options, registry)
        minutes[name] = (time.perf_counter() - started) / 60
        routers[name] = options.out

    print(f"{'router':<16}{'split':<12}{'built-in exact / skill':>26}{'greet exact / skill':>24}{'training':>12}")
    for name, folder in routers.items():
        router = load_router(RouterOptions(router_dir=folder), registry)
        for split in ("test", "validation"):
            report = evaluate(router, read_jsonl(data / f"{split}.jsonl", ("text", "call")), registry)
            greet = report.per_skill["greet"]
            builtin = [c for skill, c in report.per_skill.items() if skill != "greet"]
            rows = sum(c["rows"] for c in builtin)
            shares = (sum(c["exact"] for c in builtin) / rows, sum(c["skill"] for c in builtin) / rows)
            took = f"{minutes[name]:.1f} min" if name in minutes else "-"
            print(f"{name:<16}{split:<12}{shares[0]:>17.3f} / {shares[1]:.3f}"
                  f"{greet['exact']:>12} / {greet['skill']} of {greet['rows']}{took:>12}")  # fmt: skip


if __name__ == "__main__":
    main()
