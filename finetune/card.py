"""A router folder and its card (``router.json``), read and written in one place.

A router folder — the shipped ``router/``, or what ``skillcall train --out`` wrote — holds the card (how the router
was trained: base, template, skills, dataset, training, metrics), the adapter for PyTorch (``adapter/``) and for
llama.cpp (``router.gguf``), the loss plot, the options it was trained with (``recipe.toml``), the rows it learnt
(``learnt.txt``, finetune/replay.py) and, for an ensemble, its other routers under ``members/``. ``train`` writes
it; the routers, ``eval`` and ``train --init`` read it through ``load_card``, each naming its own next step when it
cannot.

The card is a ``RouterCard``. Cards written by earlier versions load as they are: a key they lack takes its
default, a key this version does not know is kept, and writing a card back gives the keys it was read with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ROUTER_DIR = Path(__file__).resolve().parent.parent / "router"
"""Where the shipped router lives (and ``skillcall train`` writes by default)."""
ROUTER_CARD, ADAPTER_GGUF, ADAPTER_DIR, LOSS_PNG = "router.json", "router.gguf", "adapter", "loss.png"
RECIPE = "recipe.toml"
"""The options the router was trained with (``finetune.train.options``): ``skillcall train --config`` takes it."""
MEMBERS_DIR = "members"
"""Where the other routers of an ensemble go, inside the router folder (``members/2/``, ``members/3/``, …)."""
PROMPT_KEYS = ("base", "template", "skill_list", "skills")
"""What the routers of one ensemble must share: they are asked about one prompt, evaluated once."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow")


class CardDataset(_Section):
    """The rows the router was trained on."""

    train_rows: int | None = None
    validation_rows: int | None = None
    validation_in_training: bool = Field(False, description="Validation rows were trained on (the router's, or "
                                         "those of the router it started from): they could not pick a checkpoint.")
    train_sha256: str | None = None
    seed: int | None = Field(None, description="The dataset's split seed: `skillcall eval` tests on its test split.")
    compound: float = Field(0.0, description="Share of rows with several requests the dataset composed.")


class CardLora(_Section):
    r: int | None = None
    alpha: float | None = None
    dropout: float | None = None
    target_modules: list[str] | None = None


class CardTraining(_Section):
    """How the run went (``seconds`` and the like are for people; nothing reads them back)."""

    steps: int = 0
    epochs: float | None = None
    processes: int | None = None
    rows_per_epoch: int | None = None
    replay: float | None = None
    new_rows: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    seconds: float = 0.0
    seconds_per_step: float | None = None
    threads: int | None = None
    device: str | None = None
    precision: str | None = None
    compiled_layers: int | None = None
    seed: int | None = None
    init: str | None = Field(None, description="The router it started from (``train --init``), if any.")


class CardMetrics(_Section):
    best_step: int | None = None
    validation_loss: float | None = None
    validation_call_accuracy: float = 0.0


class CardFiles(_Section):
    adapter: str = ADAPTER_DIR
    gguf: str | None = Field(ADAPTER_GGUF, description="The llama.cpp adapter; None when the base is no "
                             "llama-architecture GGUF (served by the transformers router only).")


class RouterCard(_Section):
    """How a router was trained: what it must be served with (base, template, skill list), what it learnt (skills,
    the examples' fingerprint, drafting statistics), how the run went. Keys in the order ``train`` writes them."""

    base: str | None = None
    base_file: str | None = None
    template: str | None = None
    skill_list: str | None = None
    skills: dict[str, str] | None = Field(None, description="Skill name -> signature, as trained.")
    examples_fingerprint: str | None = Field(None, description="The checked example files the dataset came from.")
    dataset: CardDataset = Field(default_factory=CardDataset)
    span_starts: dict[str, list[str]] = Field(default_factory=dict, description="finetune/drafting.py")
    skill_words: dict[str, Any] = Field(default_factory=dict, description="finetune/drafting.py")
    addressing: dict[str, Any] = Field(default_factory=dict, description="The wake name and augmentation shares.")
    lora: CardLora = Field(default_factory=CardLora)
    training: CardTraining = Field(default_factory=CardTraining)
    metrics: CardMetrics = Field(default_factory=CardMetrics)
    files: CardFiles = Field(default_factory=CardFiles)
    members: Any = Field(None, description="An ensemble's other routers, as folders inside this one; checked "
                         "where used (``member_folders``), so that a router with a bad list still serves alone.")
    date: str | None = None

    def member_folders(self) -> list[str]:
        """The folders of an ensemble's other routers (none for a single router); ValueError when ``members`` is
        not a list of folder names."""
        members = self.members or []
        if not isinstance(members, list) or not all(isinstance(folder, str) and folder for folder in members):
            raise ValueError(f'"members" is not a list of folders: {members!r}')
        return members

    def prompt_differences(self, other: RouterCard) -> list[str]:
        """The ``PROMPT_KEYS`` on which ``other`` differs from this card."""
        return [key for key in PROMPT_KEYS if getattr(other, key) != getattr(self, key)]

    def recipe_differences(self, base: str, template: str, lora: dict[str, Any]) -> dict[str, Any]:
        """What of a run's base, template and LoRA (``r``, ``alpha``, ``target_modules``, …: the keys of ``lora``)
        this router was trained with otherwise, as this card has it: a run can start from its adapter only where
        this is empty."""
        theirs = {"base": self.base, "template": self.template, "lora": self.lora.model_dump(include=set(lora))}
        ours = {"base": base, "template": template, "lora": lora}
        return {key: theirs[key] for key in ours if theirs[key] != ours[key]}

    def examples_changed(self, fingerprint: str | None) -> bool:
        """Whether the example files (their ``fingerprint``) changed since the router was trained; False where
        either is unknown."""
        return bool(fingerprint) and self.examples_fingerprint not in (None, fingerprint)

    def unlearnt_skills(self, names: list[str]) -> list[str]:
        """The skills among ``names`` the router was not trained on (none where the card lists no skills)."""
        return sorted(set(names) - set(names if self.skills is None else self.skills))

    def to_json(self) -> dict[str, Any]:
        """The card as ``router.json`` holds it: the keys it was given or read with (an empty ``members`` left
        out, as a single router's card has none)."""
        data = self.model_dump(mode="json", exclude_unset=True)
        if not data.get("members", True):
            del data["members"]
        return data


def load_card(folder: Path) -> RouterCard:
    """The card of the router in ``folder``: ``FileNotFoundError`` when there is none, ``OSError`` when it cannot be
    read, ``ValueError`` when it is not a JSON object or a value has the wrong type."""
    card = json.loads((Path(folder) / ROUTER_CARD).read_text(encoding="utf-8"))
    if not isinstance(card, dict):
        raise ValueError(f"a JSON {type(card).__name__}, not an object")
    return RouterCard.model_validate(card)


def write_card(folder: Path, card: RouterCard) -> None:
    """Write ``card`` into ``folder`` as ``router.json`` (indented, UTF-8)."""
    text = json.dumps(card.to_json(), indent=2, ensure_ascii=False) + "\n"
    (Path(folder) / ROUTER_CARD).write_text(text, encoding="utf-8")


__all__ = ["ADAPTER_DIR", "ADAPTER_GGUF", "LOSS_PNG", "MEMBERS_DIR", "PROMPT_KEYS", "ROUTER_CARD", "ROUTER_DIR",
           "CardDataset", "CardFiles", "CardLora", "CardMetrics", "CardTraining", "RouterCard", "load_card",
           "write_card"]  # fmt: skip
