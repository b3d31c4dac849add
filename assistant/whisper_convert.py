"""Turn a faster-whisper (CTranslate2) Whisper model directory into an openai-whisper checkpoint.

``convert_whisper(model_dir, out)`` reads ``model_dir/model.bin`` and writes ``out``, a ``torch.save``d
``{"dims": {...}, "model_state_dict": {...}}`` that ``whisper.load_model(str(out))`` accepts. Only model.bin is
read: openai-whisper brings its own tokenizer, so config.json and the tokenizer files are not needed.

model.bin, as written by ``ctranslate2/specs/model_spec.py::_serialize`` (little-endian)::

    u32 binary_version, str spec_name, u32 spec_revision          (name and revision: version >= 2)
    u32 n, then n times: str name, u8 rank, u32 dims[rank], u8 dtype_id, u32 num_bytes, bytes
    u32 m, then m times: str alias, str target                     (aliases: version >= 3)

where ``str`` is ``u16 length-including-NUL, utf-8 bytes, NUL``. Before version 4 the dtype byte is the item size and
the u32 after it counts items, not bytes. Quantized weights (int8, int16) carry a ``<name>_scale`` variable and are
dequantized as ``q / scale``; an alias of a quantized weight also aliases its scale, as the C++ loader does.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from skills import SkillcallError

log = logging.getLogger(__name__)

_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")  # CTranslate2's DataType enum order
_ITEM_SIZES = {"float32": 4, "int8": 1, "int16": 2, "int32": 4, "float16": 2, "bfloat16": 2}
_LEGACY_DTYPES = {4: "float32", 2: "int16", 1: "int8"}  # binary version < 4 stored the item size instead
_MAX_BINARY_VERSION = 6
_MAX_SPEC_REVISION = 3
_GELU = 3  # ctranslate2.specs.common_spec.Activation.GELU
# Decoder flags openai-whisper's architecture fixes: (value it must have, or None for "any").
_FLAGS = {
    "decoder/activation": _GELU,
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/alibi": 0,
    "decoder/alibi_use_positive_positions": None,  # written by newer CTranslate2 only; moot while alibi is 0
    "decoder/scale_alibi": None,
    "decoder/start_from_zero_embedding": 0,
    "decoder/alignment_heads": None,  # CTranslate2's own alignment settings; openai-whisper sets heads itself
    "decoder/alignment_layer": None,
}
_VOCAB_SIZES = {51864, 51865, 51866}  # English-only, multilingual, large-v3: the tokenizers openai-whisper ships
_MEL_SIZES = {80, 128}


class ConvertError(SkillcallError):
    """A model directory that cannot become an openai-whisper checkpoint (missing, corrupt, or another model)."""


@dataclass(frozen=True)
class _Raw:
    shape: tuple[int, ...]
    dtype: str
    data: bytearray


@dataclass(frozen=True)
class _ModelFile:
    path: Path
    binary_version: int
    spec: str
    revision: int
    variables: dict[str, _Raw]
    aliases: dict[str, str]


def convert_whisper(model_dir: Path, out: Path) -> Path:
    """Convert the faster-whisper model in ``model_dir`` to the openai-whisper checkpoint ``out`` (atomically:
    a temp file beside ``out``, then a rename). Returns ``out``."""
    started = time.perf_counter()
    model_dir, out = Path(model_dir).expanduser(), Path(out).expanduser()
    model_bin = model_dir / "model.bin"
    if not model_dir.is_dir():
        raise ConvertError(f"Whisper model directory {model_dir} does not exist; pass a faster-whisper model folder "
                           "(model.bin, config.json, tokenizer.json)")  # fmt: skip
    if not model_bin.is_file():
        raise ConvertError(f"{model_bin} does not exist; {model_dir} is not a faster-whisper model folder "
                           "(download one, or convert a Hugging Face Whisper model with ct2-transformers-converter)")  # fmt: skip
    if out.is_dir():
        raise ConvertError(f"output {out} is a directory; name the checkpoint file to write, e.g. {out / 'tiny.pt'}")
    torch = _import_torch()

    model = _read_model_bin(model_bin)
    if model.spec != "WhisperSpec":
        raise ConvertError(f"{model_bin} holds a CTranslate2 {model.spec or 'unnamed'} model, not a Whisper one; "
                           "pass a faster-whisper model folder")  # fmt: skip
    if model.revision > _MAX_SPEC_REVISION:
        raise ConvertError(f"{model_bin} is WhisperSpec revision {model.revision}, newer than the {_MAX_SPEC_REVISION} "
                           "this converter knows; convert the original Hugging Face model instead")  # fmt: skip
    dims, state = _to_openai(model, torch)
    _write_atomic({"dims": dims, "model_state_dict": state}, out, torch)
    log.info("converted %s (WhisperSpec rev %d, binary v%d, %s) to %s in %.1f s", model_bin, model.revision,
             model.binary_version, _dtype_summary(model), out, time.perf_counter() - started)  # fmt: skip
    return out


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ConvertError("converting a Whisper model needs PyTorch: pip install torch==2.13.0 "
                           "(or pip install -e '.[train]')") from exc  # fmt: skip
    return torch


# --- reading model.bin --------------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, file: BinaryIO, path: Path) -> None:
        self.file, self.path = file, path
        self.size = os.fstat(file.fileno()).st_size

    def bytes(self, size: int, what: str) -> bytearray:
        position = self.file.tell()
        data = bytearray(min(size, self.size - position))  # a corrupt size must not allocate gigabytes
        if len(data) != size or self.file.readinto(data) != size:
            raise ConvertError(f"{self.path} is truncated: {what} of {size} bytes at byte {position} is cut short; "
                               "download or convert the model again")  # fmt: skip
        return data

    def unpack(self, fmt: str, what: str) -> int:
        return struct.unpack("<" + fmt, self.bytes(struct.calcsize("<" + fmt), what))[0]

    def string(self, what: str) -> str:
        size = self.unpack("H", what)
        raw = self.bytes(size, what)
        if not size or raw[-1] != 0:
            raise ConvertError(f"{self.path} is not a CTranslate2 model file ({what} at byte {self.file.tell() - size} "
                               "is not a NUL-terminated string); download or convert the model again")  # fmt: skip
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise ConvertError(f"{self.path} is not a CTranslate2 model file ({what} is not UTF-8); "
                               "download or convert the model again") from None  # fmt: skip


def _read_model_bin(path: Path) -> _ModelFile:
    with path.open("rb") as file:
        reader = _Reader(file, path)
        version = reader.unpack("I", "binary version")
        if not 1 <= version <= _MAX_BINARY_VERSION:
            raise ConvertError(f"{path} is not a CTranslate2 model file this converter reads (binary version {version}, "
                               f"expected 1..{_MAX_BINARY_VERSION}); pass a faster-whisper model.bin")  # fmt: skip
        spec, revision = "", 1
        if version >= 2:
            spec = reader.string("spec name")
            revision = reader.unpack("I", "spec revision")
        if spec != "WhisperSpec":  # stop before reading a large file of some other model
            return _ModelFile(path, version, spec, revision, {}, {})
        variables: dict[str, _Raw] = {}
        for _ in range(reader.unpack("I", "variable count")):
            name = reader.string("variable name")
            shape = tuple(reader.unpack("I", f"shape of {name}") for _ in range(reader.unpack("B", f"rank of {name}")))
            type_id = reader.unpack("B", f"dtype of {name}")
            if version >= 4:
                dtype = _DTYPES[type_id] if type_id < len(_DTYPES) else None
                num_bytes = reader.unpack("I", f"size of {name}")
            else:
                dtype = _LEGACY_DTYPES.get(type_id)
                num_bytes = reader.unpack("I", f"size of {name}") * type_id
            if dtype is None:
                raise ConvertError(f"{path}: variable {name} has unknown dtype id {type_id}; the file is corrupt or "
                                   "from an unsupported CTranslate2 version")  # fmt: skip
            expected = _ITEM_SIZES[dtype] * _numel(shape)
            if num_bytes != expected:
                raise ConvertError(f"{path}: variable {name} {list(shape)} {dtype} should take {expected} bytes but "
                                   f"the file says {num_bytes}; the file is corrupt, convert it again")  # fmt: skip
            if name in variables:
                raise ConvertError(f"{path}: variable {name} appears twice; the file is corrupt, convert it again")
            variables[name] = _Raw(shape, dtype, reader.bytes(num_bytes, f"data of {name}"))
        aliases: dict[str, str] = {}
        if version >= 3:
            for _ in range(reader.unpack("I", "alias count")):
                alias = reader.string("alias name")
                aliases[alias] = reader.string(f"target of alias {alias}")
        trailing = len(file.read(1))
    if trailing:
        raise ConvertError(f"{path} has data after its last alias; the file is corrupt, convert it again")
    return _ModelFile(path, version, spec, revision, variables, aliases)


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def _dtype_summary(model: _ModelFile) -> str:
    weights = sorted({raw.dtype for name, raw in model.variables.items() if name.endswith("weight")})
    return "weights " + "/".join(weights)


# --- mapping to openai-whisper --------------------------------------------------------------------------------------


class _Variables:
    """model.bin's variables as tensors, taken one by one so that leftovers and gaps can be reported."""

    def __init__(self, model: _ModelFile, torch: Any) -> None:
        self.path, self.torch = model.path, torch
        self.raw = dict(model.variables)
        for alias, target in model.aliases.items():
            if target not in self.raw:
                raise ConvertError(f"{model.path}: alias {alias} points to {target}, which the file does not hold; "
                                   "the file is corrupt, convert it again")  # fmt: skip
            self.raw[alias] = self.raw[target]
            if target + "_scale" in self.raw:  # as the C++ loader does: the scale follows its weight
                self.raw[alias + "_scale"] = self.raw[target + "_scale"]
        self.missing: list[str] = []
        self.taken: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self.raw

    def scalar(self, name: str) -> int | float | None:
        if name not in self.raw:
            return None
        value = self.take(name)
        if value.numel() != 1:
            raise ConvertError(f"{self.path}: {name} should be a single value, got shape {list(value.shape)}; "
                               "this is not a faster-whisper model file")  # fmt: skip
        return value.item()

    def take(self, name: str) -> Any:
        """The tensor called ``name``, dequantized to float32 if the file stores it as int8/int16 with a scale."""
        raw = self.raw.get(name)
        if raw is None:
            self.missing.append(name)
            return None
        self.taken.add(name)
        torch = self.torch
        dtype = getattr(torch, raw.dtype)
        if not raw.data:  # frombuffer refuses an empty buffer
            return torch.empty(raw.shape, dtype=dtype)
        tensor = torch.frombuffer(raw.data, dtype=dtype).reshape(raw.shape)
        if raw.dtype in ("int8", "int16") and name.endswith("weight"):
            scale = self.take(name + "_scale")
            if scale is None:
                raise ConvertError(f"{self.path}: quantized {raw.dtype} weight {name} has no {name}_scale; the file "
                                   "is corrupt or incomplete, convert it again")  # fmt: skip
            scale = scale.to(torch.float32)
            tensor = tensor.to(torch.float32) / scale.reshape(scale.shape + (1,) * (tensor.dim() - scale.dim()))
        return tensor

    def left_over(self) -> list[str]:
        return sorted(set(self.raw) - self.taken)


def _to_openai(model: _ModelFile, torch: Any) -> tuple[dict[str, int], dict[str, Any]]:
    v = _Variables(model, torch)
    for flag, wanted in _FLAGS.items():
        value = v.scalar(flag)
        if value is not None and wanted is not None and value != wanted:
            raise ConvertError(f"{model.path}: {flag} is {value}, but openai-whisper's architecture needs {wanted}; "
                               "this model cannot be expressed as an openai-whisper checkpoint")  # fmt: skip
    dims = _dims(model, v)
    state: dict[str, Any] = {}
    _encoder(v, dims, state)
    _decoder(v, dims, state)
    if v.missing:
        raise ConvertError(f"{model.path} lacks variables a Whisper model needs: {', '.join(v.missing[:8])}"
                           f"{' ...' if len(v.missing) > 8 else ''}; the file is incomplete or from another "
                           "model, convert it again")  # fmt: skip
    if v.left_over():
        extra = v.left_over()
        raise ConvertError(f"{model.path} holds variables this converter does not know: {', '.join(extra[:8])}"
                           f"{' ...' if len(extra) > 8 else ''}; it may come from a newer CTranslate2 - convert the "
                           "original Hugging Face model instead")  # fmt: skip
    _check_shapes(model.path, dims, state)
    return dims, state


def _dims(model: _ModelFile, v: _Variables) -> dict[str, int]:
    def shape(name: str) -> tuple[int, ...]:
        raw = v.raw.get(name)
        if raw is None:
            raise ConvertError(
                f"{model.path} lacks {name}; it is not a complete faster-whisper model, convert it again"
            )
        return raw.shape

    def layers(side: str) -> int:
        found = {int(m.group(1)) for n in v.raw if (m := re.match(rf"{side}/layer_(\d+)/", n))}
        if found != set(range(len(found))) or not found:
            raise ConvertError(f"{model.path}: {side} layers {sorted(found)} are not numbered 0..n-1; "
                               "the file is corrupt or not a Whisper model")  # fmt: skip
        return len(found)

    def heads(side: str) -> int:
        value = v.scalar(f"{side}/num_heads")
        if value is None:
            raise ConvertError(f"{model.path} lacks {side}/num_heads; convert the model with a current CTranslate2")
        return int(value)

    conv1 = shape("encoder/conv1/weight")
    if len(conv1) != 3:
        raise ConvertError(f"{model.path}: encoder/conv1/weight has shape {list(conv1)}, expected 3 dimensions")
    embeddings = shape("decoder/embeddings/weight")
    dims = {
        "n_mels": conv1[1],
        "n_audio_ctx": shape("encoder/position_encodings/encodings")[0],
        "n_audio_state": conv1[0],
        "n_audio_head": heads("encoder"),
        "n_audio_layer": layers("encoder"),
        "n_vocab": embeddings[0],
        "n_text_ctx": shape("decoder/position_encodings/encodings")[0],
        "n_text_state": embeddings[-1],
        "n_text_head": heads("decoder"),
        "n_text_layer": layers("decoder"),
    }
    for side in ("audio", "text"):
        if dims[f"n_{side}_head"] <= 0 or dims[f"n_{side}_state"] % dims[f"n_{side}_head"]:
            raise ConvertError(f"{model.path}: {dims[f'n_{side}_state']} {side} channels do not split into "
                               f"{dims[f'n_{side}_head']} heads; the file is corrupt")  # fmt: skip
    if dims["n_vocab"] not in _VOCAB_SIZES or dims["n_mels"] not in _MEL_SIZES:
        raise ConvertError(f"{model.path}: vocabulary {dims['n_vocab']} / {dims['n_mels']} mel bins match none of "
                           "openai-whisper's tokenizers (vocab 51864/51865/51866, 80/128 mels); a model with a "
                           "changed vocabulary cannot run under openai-whisper - keep it on faster-whisper")  # fmt: skip
    return dims


def _layer_norm(v: _Variables, src: str, dst: str, state: dict[str, Any]) -> None:
    state[f"{dst}.weight"] = v.take(f"{src}/gamma")
    state[f"{dst}.bias"] = v.take(f"{src}/beta")


def _linear(v: _Variables, src: str, dst: str, state: dict[str, Any]) -> None:
    state[f"{dst}.weight"] = v.take(f"{src}/weight")
    state[f"{dst}.bias"] = v.take(f"{src}/bias")


def _fused(v: _Variables, src: str, dsts: list[str], state: dict[str, Any]) -> None:
    """A fused projection (QKV or KV) split into openai-whisper's separate ones; the key has no bias there."""
    weight, bias = v.take(f"{src}/weight"), v.take(f"{src}/bias")
    if weight is None or bias is None:
        return
    parts = len(dsts)
    if weight.shape[0] % parts or bias.shape[0] != weight.shape[0]:
        raise ConvertError(f"{v.path}: {src} has weight {list(weight.shape)} and bias {list(bias.shape)}, which do "
                           f"not split into {parts} projections; the file is corrupt or not a Whisper model")  # fmt: skip
    for dst, w, b in zip(dsts, weight.chunk(parts), bias.chunk(parts), strict=True):
        state[f"{dst}.weight"] = w.clone()  # own storage: torch.save would otherwise write the fused tensor
        if dst.endswith(".key"):
            # Whisper's key projection has no bias (CTranslate2 stores zeros). Dropping even a non-zero one is exact:
            # it adds q.b to every score of a query, and softmax ignores a constant shift.
            if bool(b.any()):
                log.debug("%s: dropping a non-zero key bias (softmax is invariant to it)", src)
        else:
            state[f"{dst}.bias"] = b.clone()


def _block(v: _Variables, src: str, dst: str, state: dict[str, Any], cross: bool) -> None:
    _layer_norm(v, f"{src}/self_attention/layer_norm", f"{dst}.attn_ln", state)
    _fused(v, f"{src}/self_attention/linear_0", [f"{dst}.attn.{p}" for p in ("query", "key", "value")], state)
    _linear(v, f"{src}/self_attention/linear_1", f"{dst}.attn.out", state)
    if cross:
        _layer_norm(v, f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln", state)
        _linear(v, f"{src}/attention/linear_0", f"{dst}.cross_attn.query", state)
        _fused(v, f"{src}/attention/linear_1", [f"{dst}.cross_attn.{p}" for p in ("key", "value")], state)
        _linear(v, f"{src}/attention/linear_2", f"{dst}.cross_attn.out", state)
    _layer_norm(v, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln", state)
    _linear(v, f"{src}/ffn/linear_0", f"{dst}.mlp.0", state)
    _linear(v, f"{src}/ffn/linear_1", f"{dst}.mlp.2", state)


def _encoder(v: _Variables, dims: dict[str, int], state: dict[str, Any]) -> None:
    _linear(v, "encoder/conv1", "encoder.conv1", state)
    _linear(v, "encoder/conv2", "encoder.conv2", state)
    state["encoder.positional_embedding"] = v.take("encoder/position_encodings/encodings")
    for i in range(dims["n_audio_layer"]):
        _block(v, f"encoder/layer_{i}", f"encoder.blocks.{i}", state, cross=False)
    _layer_norm(v, "encoder/layer_norm", "encoder.ln_post", state)


def _decoder(v: _Variables, dims: dict[str, int], state: dict[str, Any]) -> None:
    torch = v.torch
    state["decoder.token_embedding.weight"] = embeddings = v.take("decoder/embeddings/weight")
    state["decoder.positional_embedding"] = v.take("decoder/position_encodings/encodings")
    for i in range(dims["n_text_layer"]):
        _block(v, f"decoder/layer_{i}", f"decoder.blocks.{i}", state, cross=True)
    _layer_norm(v, "decoder/layer_norm", "decoder.ln", state)
    # openai-whisper computes logits with the token embedding itself (tied weights) and no bias.
    if v.has("decoder/projection/weight"):
        projection = v.take("decoder/projection/weight")
        if embeddings is not None and not (
            projection.shape == embeddings.shape and torch.equal(projection, embeddings)
        ):
            raise ConvertError(f"{v.path}: decoder/projection/weight differs from decoder/embeddings/weight, but "
                               "openai-whisper ties them; this model cannot run under openai-whisper")  # fmt: skip
    if v.has("decoder/projection/bias") and bool(v.take("decoder/projection/bias").any()):
        raise ConvertError(f"{v.path}: decoder/projection/bias is not zero, but openai-whisper's output layer has "
                           "no bias; this model cannot run under openai-whisper")  # fmt: skip


def _check_shapes(path: Path, dims: dict[str, int], state: dict[str, Any]) -> None:
    expected = _expected_shapes(dims)
    unknown = sorted(set(state) - set(expected))
    if unknown:  # a bug here, not in the file
        raise ConvertError(f"{path}: the converter produced unexpected parameters {unknown[:4]}; report this")
    for name, shape in expected.items():
        if name not in state:
            raise ConvertError(f"{path}: no value for openai-whisper parameter {name}; report this")
        if tuple(state[name].shape) != shape:
            raise ConvertError(f"{path}: openai-whisper's {name} needs shape {list(shape)}, the file gives "
                               f"{list(state[name].shape)} (dims {dims}); the file is corrupt or not a Whisper "
                               "model, convert it again")  # fmt: skip


def _expected_shapes(dims: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """Every parameter of ``whisper.model.Whisper(dims)`` with its shape (without importing openai-whisper)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def block(prefix: str, n: int, cross: bool) -> None:
        attentions = [("attn", "attn_ln")] + ([("cross_attn", "cross_attn_ln")] if cross else [])
        for attn, ln in attentions:
            shapes.update({f"{prefix}.{ln}.weight": (n,), f"{prefix}.{ln}.bias": (n,)})
            for proj in ("query", "key", "value", "out"):
                shapes[f"{prefix}.{attn}.{proj}.weight"] = (n, n)
                if proj != "key":
                    shapes[f"{prefix}.{attn}.{proj}.bias"] = (n,)
        shapes.update({f"{prefix}.mlp_ln.weight": (n,), f"{prefix}.mlp_ln.bias": (n,)})
        shapes.update({f"{prefix}.mlp.0.weight": (4 * n, n), f"{prefix}.mlp.0.bias": (4 * n,)})
        shapes.update({f"{prefix}.mlp.2.weight": (n, 4 * n), f"{prefix}.mlp.2.bias": (n,)})

    a, t = dims["n_audio_state"], dims["n_text_state"]
    shapes["encoder.conv1.weight"], shapes["encoder.conv1.bias"] = (a, dims["n_mels"], 3), (a,)
    shapes["encoder.conv2.weight"], shapes["encoder.conv2.bias"] = (a, a, 3), (a,)
    shapes["encoder.positional_embedding"] = (dims["n_audio_ctx"], a)
    for i in range(dims["n_audio_layer"]):
        block(f"encoder.blocks.{i}", a, cross=False)
    shapes["encoder.ln_post.weight"], shapes["encoder.ln_post.bias"] = (a,), (a,)
    shapes["decoder.token_embedding.weight"] = (dims["n_vocab"], t)
    shapes["decoder.positional_embedding"] = (dims["n_text_ctx"], t)
    for i in range(dims["n_text_layer"]):
        block(f"decoder.blocks.{i}", t, cross=True)
    shapes["decoder.ln.weight"], shapes["decoder.ln.bias"] = (t,), (t,)
    return shapes


# --- writing ----------------------------------------------------------------------------------------------------------


def _write_atomic(checkpoint: dict[str, Any], out: Path, torch: Any) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConvertError(f"cannot write {out} ({exc.strerror or exc}); choose a writable output path") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
