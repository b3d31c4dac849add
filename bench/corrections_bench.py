"""The user's loop, measured: twenty corrections of turns the router got wrong, then the README's retrain.

    .venv/bin/python bench/corrections_bench.py [--out runs/corrections] [--corrections bench/corrections/twenty.tsv]

Copies the example files to OUT/examples, logs each phrasing of ``--corrections`` as a turn in a history database
(OUT/history.db) with the call the shipped router gives it, and corrects each turn as ``skillcall correct TURN
'CALL'`` does. Then ``skillcall dataset && skillcall train --init router`` on those files (OUT/data, OUT/router),
and routes, with the shipped router and the retrained one: the corrected phrasings, phrasings near them that no
correction names (``bench/corrections/nearby.tsv``), and the test split's rows (the shipped router's test split:
corrections only ever go to the training split). Prints each count and the retrain's wall time. About ten minutes
here; run it on an idle machine.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from assistant.corrections import Corrector
from assistant.history import History, Turn
from assistant.routers import RouterOptions, load_router
from finetune.card import ROUTER_DIR
from finetune.dataset import DatasetOptions, build_dataset, read_jsonl
from finetune.evaluate import evaluate
from finetune.examples import EXAMPLES_DIR, load_examples
from finetune.train import TrainOptions, train
from skills import load_registry

HERE = Path(__file__).resolve().parent / "corrections"


def read_tsv(path: Path) -> list[dict]:
    """Rows ``{"text", "call"}`` of a file of ``text<TAB>call`` lines (``#`` lines are comments)."""
    lines = [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines()]
    return [dict(zip(("text", "call"), line.split("\t"), strict=True)) for line in lines if line and line[0] != "#"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/corrections"), help="Folder for everything written.")
    parser.add_argument("--corrections", type=Path, default=HERE / "twenty.tsv", help="Phrasings and their calls.")
    parser.add_argument("--nearby", type=Path, default=HERE / "nearby.tsv", help="Phrasings no correction names.")
    parser.add_argument("--replay", type=float, default=None, help="train --replay (default: its own).")
    parser.add_argument("--lr", type=float, default=None, help="train --lr (default: its own).")
    args = parser.parse_args()

    registry = load_registry()
    shutil.rmtree(args.out, ignore_errors=True)
    examples = args.out / "examples"
    shutil.copytree(EXAMPLES_DIR, examples)
    shipped = load_router(RouterOptions(router_dir=ROUTER_DIR, known_values=False), registry)
    corrections, nearby = read_tsv(args.corrections), read_tsv(args.nearby)

    history = History(args.out / "history.db")
    corrector = Corrector(registry, [examples], examples, history)
    for row in corrections:
        turn = history.add(Turn(row["text"], call=str(shipped.route(row["text"]))))
        corrector.correct_turn(turn, row["call"])
    started = time.perf_counter()
    data = args.out / "data"
    build_dataset(load_examples([examples], registry), DatasetOptions(data))
    tuned = {k: v for k, v in {"replay": args.replay, "learning_rate": args.lr}.items() if v}
    result = train(TrainOptions(data=data, out=args.out / "router", init=ROUTER_DIR, **tuned), registry)
    minutes = (time.perf_counter() - started) / 60
    retrained = load_router(RouterOptions(router_dir=result.out, known_values=False), registry)

    test = read_jsonl(data / "test.jsonl", ("text", "call"))  # the shipped router's: corrections go to train only
    print(f"retrain (dataset + train --init router): {minutes:.1f} min, {result.card.training.steps} steps, "
          f"{result.card.training.new_rows} new rows")  # fmt: skip
    print(f"{'router':<12}{'corrected':>12}{'nearby':>10}{'test single':>14}{'test compound':>16}")
    for name, router in (("shipped", shipped), ("retrained", retrained)):
        right = [evaluate(router, rows, registry) for rows in (corrections, nearby, test)]
        single, compound = right[2].single_summary(), right[2].compound
        print(f"{name:<12}{right[0].exact:>6} of {len(corrections):<3}{right[1].exact:>4} of {len(nearby):<3}"
              f"{single['exact']:>7} of {single['rows']:<4}{compound['exact']:>7} of {compound['rows']}")  # fmt: skip
        if name == "retrained":
            for miss in right[0].misses:
                print(f"  still wrong: {miss.text!r} -> {miss.got}")


if __name__ == "__main__":
    main()
