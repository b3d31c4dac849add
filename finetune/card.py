"""A router folder and its card (``router.json``), read in one place.

A router folder — the shipped ``router/``, or what ``skillcall train --out`` wrote — holds the card (how the router
was trained: base, template, skills, dataset, training, metrics), the adapter for PyTorch (``adapter/``) and for
llama.cpp (``router.gguf``), the loss plot, the rows it learnt (``learnt.txt``, finetune/replay.py) and, for an
ensemble, its other routers under ``members/``. ``train`` writes it; the routers, ``eval`` and ``train --init``
read it through ``load_card``, each naming its own next step when it cannot.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROUTER_DIR = Path(__file__).resolve().parent.parent / "router"
"""Where the shipped router lives (and ``skillcall train`` writes by default)."""
ROUTER_CARD, ADAPTER_GGUF, ADAPTER_DIR, LOSS_PNG = "router.json", "router.gguf", "adapter", "loss.png"
MEMBERS_DIR = "members"
"""Where the other routers of an ensemble go, inside the router folder (``members/2/``, ``members/3/``, …)."""


def load_card(folder: Path) -> dict[str, Any]:
    """The card of the router in ``folder``: ``FileNotFoundError`` when there is none, ``OSError`` when it cannot be
    read, ``ValueError`` when it is not a JSON object."""
    card = json.loads((Path(folder) / ROUTER_CARD).read_text(encoding="utf-8"))
    if not isinstance(card, dict):
        raise ValueError(f"a JSON {type(card).__name__}, not an object")
    return card


def write_card(folder: Path, card: dict[str, Any]) -> None:
    """Write ``card`` into ``folder`` as ``router.json`` (indented, UTF-8)."""
    (Path(folder) / ROUTER_CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def card_members(card: dict[str, Any]) -> list[str]:
    """The folders of an ensemble's other routers a router card lists (none for a single router); ValueError when
    the card's ``members`` is not a list of folder names."""
    members = card.get("members") or []
    if not isinstance(members, list) or not all(isinstance(folder, str) and folder for folder in members):
        raise ValueError(f'"members" is not a list of folders: {members!r}')
    return members


__all__ = ["ADAPTER_DIR", "ADAPTER_GGUF", "LOSS_PNG", "MEMBERS_DIR", "ROUTER_CARD", "ROUTER_DIR", "card_members",
           "load_card", "write_card"]  # fmt: skip
