"""``TrainOptions``: everything ``train`` needs, validated up front (LoRA settings in their own group), and what
it gives back (``TrainResult``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from skills import SkillcallError

from ..base import DEFAULT_BASE
from ..card import RECIPE, ROUTER_DIR, RouterCard
from ..prompts import DEFAULT_TEMPLATE, SkillList


class TrainError(SkillcallError):
    """Training cannot start or continue."""


class LoraOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: float = Field(32.0, gt=0, description="LoRA alpha; the update is scaled by alpha / r. Unset: 2 × r.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA input. 0 by default: on a CPU, "
                           "drawing the masks costs a third of a step, time better spent on more epochs.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        description="Linear layers that get an adapter (llama names).",
    )

    @model_validator(mode="after")
    def _alpha_follows_rank(self) -> LoraOptions:
        if "alpha" not in self.model_fields_set:  # through __dict__: the field stays unset, as the user left it
            self.__dict__["alpha"] = 2.0 * self.r
        return self


class TrainOptions(BaseModel):
    """Everything ``train`` needs; validated up front. Defaults fit a laptop CPU and the bundled SmolLM2-135M."""

    model_config = ConfigDict(extra="forbid")

    base: str = Field(DEFAULT_BASE, description="Base model: the bundled GGUF, a .gguf path, or an HF model dir/name.")
    data: Path = Field(Path("data"), description="Folder with train.jsonl and validation.jsonl (skillcall dataset).")
    out: Path = Field(ROUTER_DIR, description="Folder the router is written to.")
    template: str = Field(DEFAULT_TEMPLATE, description="Prompt template family (prompts/<name>.toml) or a .toml path.")
    skill_list: SkillList = Field("none", description="Skill list in the prompt: none, names or full.")
    epochs: float = Field(3.5, gt=0, description="Passes over the training rows (fractions allowed); 2 (over the "
                          "rows ``replay`` picks) unless given when starting from another router (``init``).")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps (overrides epochs).")
    batch_size: int = Field(8, ge=1, description="Rows per step; each batch is padded to its own longest row.")
    learning_rate: float = Field(1.5e-3, gt=0, description="Peak learning rate (cosine schedule after warm-up); "
                                 "1.5e-4 unless given when starting from another router (``init``).")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Share of the steps spent warming up.")
    weight_decay: float = Field(0.0, ge=0)
    eval_every: int | None = Field(None, ge=1, description="Steps between validations; None = four per run (two "
                                   "for a retrain that replays a share of the rows: each costs a minute here).")
    max_train_rows: int | None = Field(None, ge=1, description="Use only this many training rows (smoke tests).")
    train_on_validation: bool = Field(False, description="Train on the validation rows too, for a final router: "
                                      "more rows to learn from, while the test split stays held out for "
                                      "`skillcall eval` (``max_train_rows`` then draws from both). Validation then "
                                      "measures rows the router has seen, so it no longer picks a checkpoint: the "
                                      "last one is kept, and the card says so (as it does for a run started with "
                                      "``init`` from such a router).")  # fmt: skip
    max_eval_rows: int | None = Field(None, ge=1, description="Validate on only this many rows.")
    seed: int = Field(0, description="Seeds data order, LoRA init, addressing and dropout.")
    threads: int | None = Field(None, ge=1, description="CPU threads for PyTorch; None = all cores.")
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="Arithmetic of the frozen base model. bfloat16 runs a CPU step ≈1.3× faster where the "
        "CPU multiplies bfloat16 in hardware (AMX, AVX512-BF16); the adapter and the optimizer stay float32 either "
        "way. auto = bfloat16 on a GPU, or on a CPU that multiplies bfloat16 at least 1.5× faster than float32 "
        "(timed at start), else float32.")  # fmt: skip
    compile: bool = Field(True, description="Compile the decoder layers with torch.compile; they share the "
                          "compiled code, for every batch shape (≈40 s on a 2-vCPU laptop the first time, cached "
                          "after): a CPU step ≈1.3× faster. Where compilation fails (no C++ compiler), training runs "
                          "uncompiled.")  # fmt: skip
    resume: bool = Field(False, description="Continue from out/checkpoint if it is there.")
    init: Path | None = Field(None, description="Start from this router's adapter (a folder `skillcall train` wrote, "
                              "e.g. the shipped router/) instead of fresh LoRA weights: after adding a skill or "
                              "examples, a retrain keeps what that router learnt and needs fewer epochs. Its base, "
                              "template and LoRA rank must be this run's.")  # fmt: skip
    replay: float = Field(0.25, gt=0, le=1, description="Starting from a router that lists the rows it learnt "
                          "(``init``; finetune/replay.py), each epoch trains on every row it has not learnt (a new "
                          "skill's, corrections, rows added) and this share of the others, drawn afresh each epoch: "
                          "a retrain in minutes that keeps what the router knew. 1 = every row, every epoch. "
                          "Without ``init`` every row is new.")  # fmt: skip
    four_bit: bool = Field(False, description="QLoRA: load the base in 4 bits (bitsandbytes, CUDA only).")
    export: bool = Field(True, description="Write the llama.cpp adapter GGUF (needs a GGUF base).")
    wake: str | None = Field("Otto", description="The assistant's name (the wake phrase). Each epoch some rows are "
                             "said to it or to another assistant (\"Otto, ...\", \"Alexa, ...\": the same call) or "
                             "to someone else (\"Mom, ...\": other()), so the router learns whom a request is for; "
                             "None = rows as written.")  # fmt: skip
    address_share: float = Field(0.2, ge=0, le=1, description="Share of training rows varied that way per epoch.")
    filler_share: float = Field(0.15, ge=0, le=1, description="Share of training rows given a filler in front per "
                                "epoch (\"Um, …\", \"So uh …\"): the same call, so hesitation does not read as other().")
    numbers_share: float = Field(0.15, ge=0, le=1, description="Share of training rows whose numbers are said the "
                                 "other way per epoch (\"5 minutes\" <-> \"five minutes\"), spans alike.")
    plain_share: float = Field(0.25, ge=0, le=1, description="Share of training rows typed plainly per epoch: lower "
                               "case, no punctuation, sometimes no apostrophes, as people type to an assistant and "
                               "as a transcript without punctuation reads; spans alike.")  # fmt: skip
    members: int = Field(1, ge=1, description="Routers to train, seeded ``seed``, ``seed + 1``, …: the first is "
                         "written to ``out``, the others to ``out/members/2/``, …, and the router consults them on "
                         "the skill where its own choice is not clear (``router.consult_margin``). Each costs a "
                         "whole training run; three made the shipped router. With ``init``, each starts from the "
                         "matching router of that ensemble.")  # fmt: skip
    lora: LoraOptions = Field(default_factory=LoraOptions)

    @model_validator(mode="after")
    def _from_a_router(self) -> TrainOptions:
        """Starting from a trained router, two gentle passes over what ``replay`` picks: fresh weights' 3.5 epochs
        at 1.5e-3 would cost the time ``init`` saves and move the router as far as training from scratch does (at
        3e-4 a retrain of twenty corrections lost 11 of 108 compound test rows; at 1.5e-4, one: docs/training.md)."""
        if self.init is not None:  # through __dict__: the fields stay unset, as the user left them
            if "epochs" not in self.model_fields_set:
                self.__dict__["epochs"] = 2.0
            if "learning_rate" not in self.model_fields_set:
                self.__dict__["learning_rate"] = 1.5e-4
        return self


NOT_IN_RECIPE = {"out", "resume", "wake"}
"""Where the router goes, whether a run resumed, and the assistant's name (the user's config says it): not how the
router was made."""


def write_recipe(options: TrainOptions, folder: Path) -> Path:
    """``recipe.toml`` in the router folder: the options it was trained with, as ``--config`` reads them."""
    import tomli_w

    path = folder / RECIPE
    recipe = options.model_dump(mode="json", exclude=NOT_IN_RECIPE, exclude_none=True)
    if "alpha" not in options.lora.model_fields_set:  # it follows the rank, a rank given over the recipe's too
        del recipe["lora"]["alpha"]
    path.write_text("# skillcall train --config " + str(path) + " trains a router the same way.\n" +
                    tomli_w.dumps(recipe))  # fmt: skip
    return path


def train_options(recipe: Path | None = None, **given: object) -> TrainOptions:
    """``TrainOptions`` from a recipe file (``--config``) with ``given`` over it (a ``lora`` dict merges with the
    file's ``[lora]``); a bad file or value is a ``TrainError`` that names it."""
    import tomllib

    values: dict = {}
    if recipe is not None:
        try:
            values = tomllib.loads(recipe.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise TrainError(f"cannot read the training recipe {recipe} ({exc}); write TrainOptions' fields as TOML "
                             "(router/recipe.toml is an example)") from None  # fmt: skip
        for key in NOT_IN_RECIPE & values.keys():
            del values[key]
    lora = {**values.get("lora", {}), **given.pop("lora", {})}  # type: ignore[dict-item]
    try:
        return TrainOptions.model_validate({**values, **given, "lora": lora})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        source = f" in {recipe}" if recipe is not None else ""
        raise TrainError(f"training option {where}{source}: {error['msg']}; `skillcall train --help` lists the "
                         "options") from None  # fmt: skip


@dataclass(frozen=True)
class TrainStep:
    """What ``train`` tells its ``on_step`` callback after each step."""

    out: Path
    """The router being trained (an ensemble trains several in turn)."""
    step: int
    total: int
    loss: float
    validation_loss: float | None = None
    """After a validation: its loss, and its call accuracy (the share of rows whose call came out whole)."""
    call_accuracy: float | None = None


@dataclass
class TrainResult:
    out: Path
    card: RouterCard | None
    """None in the other processes under `accelerate launch`: the main one writes the router."""
    history: list[dict[str, float]] = field(default_factory=list)
    members: list[TrainResult] = field(default_factory=list)
    """The other routers of an ensemble (``TrainOptions.members``), each as written to its folder."""
