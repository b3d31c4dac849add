"""``load_router``: the front door that builds the configured router once."""

from __future__ import annotations

import logging

from skills import Registry

from .base import Router, read_card, retrain_command
from .llamacpp import LlamaCppRouter
from .openai import OpenAIRouter
from .options import RouterOptions
from .transformers import TransformersRouter

logger = logging.getLogger(__name__)
ROUTERS: dict[str, type[Router]] = {"llama.cpp": LlamaCppRouter, "transformers": TransformersRouter,
                                    "openai": OpenAIRouter}  # fmt: skip


def load_router(options: RouterOptions, registry: Registry, examples_fingerprint: str | None = None) -> Router:
    """The front door: build the configured router once (load it, evaluate its prompt prefix) and keep it.

    With ``examples_fingerprint``, warns when the example files changed since the router was trained.
    """
    card = read_card(options.router_dir) if options.kind != "openai" else None
    retrain = f"{retrain_command(options.router_dir, card)} (minutes: from this router)"
    if card and card.examples_changed(examples_fingerprint):
        logger.warning("the example files changed since this router was trained; retrain it with %s", retrain)
    missing = card.unlearnt_skills(list(registry.names)) if card else []
    if missing:
        added = f"skill {missing[0]} was" if len(missing) == 1 else f"skills {', '.join(missing)} were"
        logger.warning("%s added after the router was trained; it has not learnt %s: retrain with %s", added,
                       "it" if len(missing) == 1 else "them", retrain)  # fmt: skip
    return ROUTERS[options.kind](registry, options, card)
