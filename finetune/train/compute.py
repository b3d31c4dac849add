"""How the frozen base computes: its precision (bfloat16 where it is faster) and its decoder layers compiled with
``torch.compile``, falling back to uncompiled layers where compilation fails."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .loss import unwrapped

logger = logging.getLogger(__name__)


def pick_precision(choice: str) -> str:
    """``choice``, or for "auto" what suits this machine (see ``TrainOptions.precision``)."""
    import torch

    if choice != "auto":
        return choice
    if torch.cuda.is_available():
        return "bfloat16"

    def fastest(x: Any, y: Any) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            x @ y
            times.append(time.perf_counter() - started)
        return min(times)

    a, w = torch.randn(256, 576), torch.randn(576, 1536)  # a training step's shapes for the default base
    speedup = fastest(a, w) / fastest(a.bfloat16(), w.bfloat16())
    return "bfloat16" if speedup >= 1.5 else "float32"


@contextmanager
def autocast(model: Any, device_type: str, precision: str) -> Iterator[None]:
    """The context a forward pass of ``model`` runs in: bfloat16 autocast, or nothing for float32. Under autocast,
    peft's cast of each LoRA layer's input to the adapter's float32 is turned off: autocast casts it straight back
    to bfloat16 for the matrix product, so it only cost time (a step 6 % faster here, the loss bit-identical)."""
    import torch
    from peft.helpers import disable_input_dtype_casting

    low = precision == "bfloat16"
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=low), disable_input_dtype_casting(model, low):
        yield


def compile_layers(model: Any, device_type: str) -> int:
    """Compile ``model``'s repeated blocks (its decoder layers: the classes in ``_no_split_modules``) in place with
    ``torch.compile``: layers of one class share their compiled code (two compilations for a LoRA model: the first
    layer, whose input carries no gradient, and the others) and, being dynamic, every batch shape. The parameters'
    names do not change, so the adapter saves as before. On a CPU the compiled kernels need a C++ compiler; without
    one the layers stay as they are, with a warning. Compilation happens at the first call; in ``train_step`` and
    ``evaluate_loss`` a failure falls back to the uncompiled layers (``uncompiled_on_failure``). How many blocks
    were compiled."""
    if device_type == "cpu":
        try:
            from torch._inductor.cpp_builder import get_cpp_compiler

            get_cpp_compiler()
        except Exception as exc:  # InvalidCxxCompiler, or a PyTorch whose compiler lookup moved
            logger.warning("training runs uncompiled, about 1.3x slower: torch.compile needs a C++ compiler (%s); "
                           "install one (Debian: build-essential) or set CXX", type(exc).__name__)  # fmt: skip
            return 0
    kinds = set(getattr(unwrapped(model), "_no_split_modules", None) or ())
    blocks = [module for module in model.modules() if type(module).__name__ in kinds]
    for block in blocks:
        block.compile(dynamic=True)
    return len(blocks)


@contextmanager
def uncompiled_on_failure() -> Iterator[None]:
    """Where compiled layers (``compile_layers``) fail to compile, dynamo runs them uncompiled, with its warning
    (``suppress_errors``); the backward pass is compiled with the forward pass, so that this covers it too (else
    it compiles, and fails, inside ``backward()``)."""
    import torch

    with torch._dynamo.config.patch(suppress_errors=True), \
            torch._functorch.config.patch(force_non_lazy_backward_lowering=True):  # fmt: skip
        yield
