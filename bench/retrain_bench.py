"""Retraining benchmark: a skill a user adds, learnt from the shipped router (``--init``) or from fresh weights.

    .venv/bin/python bench/retrain_bench.py [--scratch] [--seed S] [--epochs E] [--replay R] [--out runs/retrain]

Adds the README's ``greet`` skill as a user does: ``skillcall new-skill greet name:str times:int=1`` into
OUT/skills, then the function and its 262 example rows (bench/greet/, what the user writes) over the skeleton.
Writes the splits, trains as ``skillcall train --init router [--epochs E] [--replay R] [--seed S]`` does (by
default two passes over greet's rows and 25 % of the rest, from the shipped router) and, with ``--scratch``, as
``skillcall train [--seed S]`` does (the defaults, from fresh weights). Then routes the test and validation splits
with the shipped router and each retrained one, and prints the exact-call and skill-name accuracy over the built-in
skills' rows (the rows the shipped router is measured on) and over greet's, each training's wall time, and the
machine's time from ``new-skill`` to a retrained router. About 10 minutes here, 35 with ``--scratch``; run it on
an idle machine.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from assistant.routers import RouterOptions, load_router
from assistant.scaffold import NewParameter, NewSkillOptions, new_skill
from finetune.card import ROUTER_DIR
from finetune.dataset import DatasetOptions, build_dataset, read_jsonl
from finetune.evaluate import evaluate
from finetune.examples import EXAMPLES_DIR, load_examples
from finetune.train import TrainOptions, train
from skills import load_registry

GREET = Path(__file__).resolve().parent / "greet"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/retrain"), help="Folder for the splits and routers.")
    parser.add_argument("--scratch", action="store_true", help="Also train from fresh weights (the defaults).")
    parser.add_argument("--seed", type=int, default=0, help="Training seed (the splits stay seed 0's).")
    parser.add_argument("--epochs", type=float, default=None, help="Epochs from the shipped router (default: 2).")
    parser.add_argument("--replay", type=float, default=None, help="Share of learnt rows (default: 0.25).")
    args = parser.parse_args()

    started = time.perf_counter()
    skills = args.out / "skills"
    shutil.rmtree(skills, ignore_errors=True)
    written = new_skill(NewSkillOptions("greet", (NewParameter.parse("name:str"), NewParameter.parse("times:int=1")),
                                        "Greet someone by name.", skills), load_registry())  # fmt: skip
    for path in (written.skill_path, written.examples_path):  # what the user writes into the skeleton
        shutil.copy(GREET / path.name, path)
    registry = load_registry(user_dir=skills)
    data = args.out / "data"
    build_dataset(load_examples([EXAMPLES_DIR, skills], registry), DatasetOptions(data))
    routers, minutes = {"shipped": ROUTER_DIR}, {}
    gentle = {k: v for k, v in {"epochs": args.epochs, "replay": args.replay}.items() if v}  # unset: --init's
    variants = {"--init router": TrainOptions(data=data, out=args.out / "init", init=ROUTER_DIR, seed=args.seed,
                                              **gentle)}  # fmt: skip
    if args.scratch:
        variants["fresh weights"] = TrainOptions(data=data, out=args.out / "scratch", seed=args.seed)
    for name, options in variants.items():
        began = time.perf_counter()
        train(options, registry)
        minutes[name] = (time.perf_counter() - began) / 60
        routers[name] = options.out
        if name == "--init router":
            print(f"new-skill -> dataset -> train --init router: {(time.perf_counter() - started) / 60:.1f} min")

    print(f"{'router':<16}{'split':<12}{'built-in exact / skill':>26}{'greet exact / skill':>24}{'training':>12}")
    for name, folder in routers.items():
        router = load_router(RouterOptions(router_dir=folder, known_values=False), registry)  # as eval
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
