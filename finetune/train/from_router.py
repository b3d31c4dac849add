"""Starting from a trained router (``train --init``): its card and adapter weights, checked against the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..card import ADAPTER_DIR, ROUTER_CARD, RouterCard, load_card
from .options import TrainError, TrainOptions


def init_router(options: TrainOptions) -> tuple[dict[str, Any], RouterCard]:
    """The adapter weights and card of the router ``options.init`` names, checked against this run's base, template
    and LoRA."""
    from peft.utils import load_peft_weights

    card = init_card(options.init)
    lora = options.lora.model_dump(include={"r", "alpha", "target_modules"})
    theirs = card.recipe_differences(options.base, options.template, lora)
    if theirs:
        raise TrainError(f"--init {options.init} was trained with another {', '.join(theirs)} "
                         f"({', '.join(f'{k}={v}' for k, v in theirs.items())}); train without --init")  # fmt: skip
    return load_peft_weights(str(options.init / ADAPTER_DIR), device="cpu"), card


def init_card(init: Path) -> RouterCard:
    """The card of a router folder named by ``--init`` (or of one of its ensemble's routers)."""
    card_path = init / ROUTER_CARD
    if not card_path.is_file() or not (init / ADAPTER_DIR).is_dir():
        raise TrainError(f"--init {init}: not a router folder (it needs {ROUTER_CARD} and {ADAPTER_DIR}/); name "
                         "one `skillcall train` wrote, such as the shipped router/")  # fmt: skip
    try:
        card = load_card(init)
    except (OSError, ValueError) as exc:
        raise TrainError(f"--init {init}: {ROUTER_CARD} is unreadable ({exc}); name another router, or "
                         "train without --init") from None  # fmt: skip
    return card
