"""``train``, the front door: each router of an ensemble (one by default) trained and written to its folder."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from skills import Registry

from ..card import MEMBERS_DIR, ROUTER_CARD
from .from_router import init_card
from .loop import train_one
from .options import TrainError, TrainOptions, TrainResult, TrainStep, write_recipe


def train(options: TrainOptions, registry: Registry, on_step: Callable[[TrainStep], None] | None = None) -> TrainResult:
    """The front door: train each router of the ensemble (one by default; the others first, so that the first
    router's card, written last, lists them only once they are there), keep each one's best checkpoint (validation
    call accuracy, then loss; the last one when the validation rows were trained on), write the router and the
    recipe it was made by (``recipe.toml``). ``on_step`` hears of each step of each router."""
    inits = _member_inits(options)  # every starting folder checked before anything is trained
    folders = [f"{MEMBERS_DIR}/{k + 1}" for k in range(1, options.members)]
    members = [train_one(options.model_copy(update={"members": 1, "seed": options.seed + k, "init": inits[k],
                                                    "out": options.out / folder}), registry, on_step=on_step)
               for k, folder in enumerate(folders, start=1)]  # fmt: skip
    result = train_one(options.model_copy(update={"members": 1}), registry, folders, on_step)
    result.members = members
    if result.card:  # not another process under `accelerate launch`
        _prune_members(options.out, folders)
        write_recipe(options, options.out)
    return result


def _member_inits(options: TrainOptions) -> list[Path | None]:
    """Where each router starts: fresh weights, or with ``init`` the router in the same place of that ensemble."""
    if options.init is None:
        return [None] * options.members
    card = init_card(options.init)
    try:
        theirs = card.member_folders()
    except ValueError as exc:
        raise TrainError(f"--init {options.init}: {ROUTER_CARD} is unreadable ({exc}); name another router, or "
                         "train without --init") from None  # fmt: skip
    if options.members > 1 + len(theirs):
        raise TrainError(f"--init {options.init} is an ensemble of {1 + len(theirs)}; train at most that many "
                         "--members from it, or more without --init")  # fmt: skip
    inits = [options.init, *(options.init / folder for folder in theirs)][: options.members]
    for folder in inits[1:]:
        init_card(folder)
    return inits


def _prune_members(out: Path, keep: list[str]) -> None:
    """Remove the routers of an earlier ensemble written to ``out`` that this one does not list: they would not
    match it (a skill added since). Only router folders go; anything else there stays."""
    folder = out / MEMBERS_DIR
    if not folder.is_dir():
        return
    for old in folder.iterdir():
        if old.is_dir() and (old / ROUTER_CARD).is_file() and f"{MEMBERS_DIR}/{old.name}" not in keep:
            shutil.rmtree(old)
    if not keep and not any(folder.iterdir()):
        folder.rmdir()
