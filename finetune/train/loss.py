"""The loss: cross-entropy over the call tokens only, with the vocabulary projection computed in chunks for a plain
frozen head (``head_loss``) so that a batch's logits never exist whole."""

from __future__ import annotations

import functools
from typing import Any


def call_logits(model: Any, batch: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(logits, targets, rows) for the call tokens only, one row of logits per label. The vocabulary projection
    (a fifth of the compute of a 135M model) runs only from the batch's first label on, and on positions given
    as a tensor: an ``int`` ``logits_to_keep`` slices the hidden states as a strided view, which makes the 49k-row
    head several times slower on a CPU. ``rows`` says which sequence each label belongs to."""
    import torch

    labels = batch["labels"][:, 1:]  # position t predicts token t + 1
    mask = labels != -100
    first = int(mask.any(dim=0).int().argmax())  # the earliest position that predicts a label
    keep = torch.arange(first, labels.size(1), device=labels.device)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep,
                   use_cache=False).logits  # training reads no KV cache: none is built
    if logits.size(1) != len(keep):  # a model without logits_to_keep returns every position
        logits = logits[:, first:-1]
    mask = mask[:, first:]
    return logits[mask], labels[:, first:][mask], mask.nonzero()[:, 0]


PLAIN_HEADS = ("llama", "mistral", "qwen2", "qwen3")
"""Model types whose logits are exactly the output embedding applied to the decoder's last hidden state."""


def call_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Mean cross-entropy over the call tokens of a batch. For a decoder with a plain, frozen head (``PLAIN_HEADS``)
    the hidden states of the call tokens are picked first and the vocabulary projection and the loss are computed
    together in chunks (``head_loss``), so the batch's 49k-wide logits and their gradient never exist whole (with the
    fused AdamW, a CPU step ≈6 % faster). Any other model goes through its own forward: one wrapped for several
    processes (DDP) or for accelerate's mixed precision (its forward wrapped), a head with an adapter, a bias or
    trainable weights."""
    import torch

    base = unwrapped(model)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    plain = getattr(getattr(base, "config", None), "model_type", None) in PLAIN_HEADS
    plain = plain and type(head) is torch.nn.Linear and head.bias is None and not hasattr(model, "_original_forward")
    if not plain or any(p.requires_grad for p in head.parameters()):
        return forward_loss(model, batch)
    labels = batch["labels"][:, 1:]  # position t predicts token t + 1
    mask = labels != -100
    hidden = base.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                use_cache=False).last_hidden_state  # fmt: skip
    return head_loss(hidden[:, :-1][mask], head.weight, labels[mask])


def forward_loss(model: Any, batch: dict[str, Any]) -> Any:
    """``call_loss`` through the model's own forward (``call_logits``): any model, any head."""
    import torch

    logits, targets, _ = call_logits(model, batch)
    return torch.nn.functional.cross_entropy(logits.float(), targets)


def unwrapped(model: Any) -> Any:
    """The transformers model inside peft's wrapper, or ``model`` itself."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def head_loss(hidden: Any, weight: Any, targets: Any, chunk: int = 128) -> Any:
    """Mean cross-entropy of the logits ``hidden @ weight.T`` (in float32, as ``call_logits`` gives them) against
    ``targets``, ``chunk`` rows at a time; the gradient for ``hidden`` is computed in the same pass (``weight`` is
    frozen), so the backward pass only scales it; without gradients (``torch.no_grad``) it is not computed."""
    import torch

    return _head_loss_function().apply(hidden, weight, targets, chunk, torch.is_grad_enabled() and hidden.requires_grad)


@functools.cache
def _head_loss_function() -> Any:
    import torch

    class HeadLoss(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, hidden: Any, weight: Any, targets: Any, chunk: int, with_grad: bool) -> Any:
            count = max(len(targets), 1)
            total = torch.zeros((), dtype=torch.float32, device=hidden.device)
            grad = torch.zeros_like(hidden) if with_grad else None
            for start in range(0, len(targets), chunk):
                logits = hidden[start : start + chunk] @ weight.T  # bfloat16 under autocast, as the head's
                picked = targets[start : start + chunk, None]
                logp = torch.log_softmax(logits, dim=-1, dtype=torch.float32)
                total -= logp.gather(1, picked).sum()
                if grad is not None:  # d loss / d logits = (softmax - one-hot) / count
                    probs = logp.exp_().scatter_add_(1, picked, torch.full_like(picked, -1, dtype=logp.dtype))
                    grad[start : start + chunk] = (probs.to(weight.dtype) @ weight).div_(count)
            ctx.save_for_backward(grad)
            return total / count

        @staticmethod
        def backward(ctx: Any, grad_output: Any) -> tuple:
            (grad,) = ctx.saved_tensors
            return grad * grad_output, None, None, None, None

    return HeadLoss
