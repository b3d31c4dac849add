"""``skillcall train``: LoRA fine-tuning of the router, loss on the call tokens only, then export for llama.cpp.

``train(options, registry)`` is the front door (``ensemble.py``: one router, or several consulted together). The
rest, a file per idea: ``options.py`` (``TrainOptions``), ``encoding.py`` (rows as token ids, batches),
``loss.py``, ``compute.py`` (precision, compilation), ``steps.py`` (an optimizer step, a validation),
``loop.py`` (one router's run), ``checkpoint.py`` (resuming), ``from_router.py`` (``--init``), ``writing.py``
(the router folder). Row augmentation is ``finetune/augment.py``; what a retrain replays, ``finetune/replay.py``.
Heavy libraries (torch, transformers, peft, accelerate) load inside the functions that need them.
"""

from .compute import autocast, compile_layers, pick_precision
from .encoding import Encoded, batch_order, collate, encode_row
from .ensemble import train
from .loss import call_logits, call_loss, forward_loss, head_loss
from .options import LoraOptions, TrainError, TrainOptions, TrainResult, TrainStep, train_options, write_recipe
from .steps import evaluate_loss, optimizer_and_schedule, train_step, with_lora

__all__ = ["Encoded", "LoraOptions", "TrainError", "TrainOptions", "TrainResult", "TrainStep", "autocast", "batch_order",
           "call_logits", "call_loss", "collate", "compile_layers", "encode_row", "evaluate_loss", "forward_loss",
           "head_loss", "optimizer_and_schedule", "pick_precision", "train", "train_options", "train_step", "with_lora",
           "write_recipe"]  # fmt: skip
