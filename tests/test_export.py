"""The llama.cpp export is numerically right: llama.cpp's logits on the exported router vs PyTorch's.

Tolerance, on a full-F32 copy of the base (so only the export is under test, not Q4 arithmetic): no logit differs
by more than 0.1, and the argmax agrees at every position whose top two logits are more than 0.2 apart. A LoRA with random weights on q/k/v/o makes the deltas
large; without the q/k row permutation the same comparison fails (the last test proves the check can fail).
"""

from __future__ import annotations

import numpy as np
import pytest

from finetune import export
from finetune.base import DEFAULT_BASE, load_base, resolve_gguf
from finetune.prompts import load_template

TOLERANCE = 0.1
PROMPTS = ["What's the weather like in São Paulo?", "set a timer for five minutes please", "Thanks, that's all."]


@pytest.fixture(scope="module")
def lora():
    import torch
    from peft import LoraConfig, get_peft_model
    from peft.utils import get_peft_model_state_dict

    torch.manual_seed(0)
    model, tokenizer = load_base()
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.02)
    model.eval()
    template = load_template()
    texts = [template.render(p) + template.render_completion('other()') for p in PROMPTS]
    logits = []
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            logits.append(model(input_ids=ids).logits[0].numpy())
    return {"state": get_peft_model_state_dict(model), "texts": texts, "logits": logits}


@pytest.fixture(scope="module")
def f32_base(tmp_path_factory):
    return export.write_merged_gguf(resolve_gguf(DEFAULT_BASE), None, tmp_path_factory.mktemp("base") / "base-f32.gguf",
                                    dtype="f32", full=True)  # fmt: skip


def _llama_logits(model_path, texts, lora_path=None):
    from llama_cpp import Llama

    llm = Llama(model_path=str(model_path), lora_path=str(lora_path) if lora_path else None, n_ctx=256,
                logits_all=True, verbose=False, n_threads=2)  # fmt: skip
    out = []
    for text in texts:
        llm.reset()
        tokens = llm.tokenize(text.encode(), add_bos=False, special=True)
        llm.eval(tokens)
        out.append(np.array(llm.scores[: llm.n_tokens]))
    return out


def _compare(ours, theirs):
    """(largest logit difference, argmax agreement over the positions PyTorch decides by more than twice the
    tolerance; a closer top two is a tie that float rounding may break either way)."""
    worst, agree, total = 0.0, 0, 0
    for a, b in zip(ours, theirs, strict=True):
        assert a.shape == b.shape
        worst = max(worst, float(np.abs(a - b).max()))
        top2 = np.sort(b, axis=-1)[:, -2:]
        decided = top2[:, 1] - top2[:, 0] > 2 * TOLERANCE
        agree += int((a.argmax(-1) == b.argmax(-1))[decided].sum())
        total += int(decided.sum())
    return worst, agree / total


def test_the_random_lora_really_changes_the_model(lora, f32_base):
    base_logits = _llama_logits(f32_base, lora["texts"])
    worst, _ = _compare(base_logits, lora["logits"])
    assert worst > 1.0


def test_adapter_gguf_matches_pytorch(lora, f32_base, tmp_path):
    adapter = export.write_adapter_gguf(lora["state"], 8, 9, 3, tmp_path / "adapter.gguf", dtype="f32")
    worst, agreement = _compare(_llama_logits(f32_base, lora["texts"], adapter), lora["logits"])
    assert agreement == 1.0 and worst < TOLERANCE, (agreement, worst)


def test_merged_gguf_matches_pytorch(lora, tmp_path):
    adapter = export.write_adapter_gguf(lora["state"], 8, 9, 3, tmp_path / "adapter.gguf", dtype="f32")
    merged = export.write_merged_gguf(resolve_gguf(DEFAULT_BASE), adapter, tmp_path / "merged.gguf", dtype="f32",
                                      full=True)  # fmt: skip
    worst, agreement = _compare(_llama_logits(merged, lora["texts"]), lora["logits"])
    assert agreement == 1.0 and worst < TOLERANCE, (agreement, worst)


def test_without_the_qk_permutation_the_check_fails(lora, f32_base, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "permute_rows", lambda weight, n_head: weight)
    adapter = export.write_adapter_gguf(lora["state"], 8, 9, 3, tmp_path / "unpermuted.gguf", dtype="f32")
    worst, agreement = _compare(_llama_logits(f32_base, lora["texts"], adapter), lora["logits"])
    assert worst > TOLERANCE


def test_permute_rows_is_the_llama_cpp_layout():
    rows = np.arange(12).reshape(12, 1)  # 2 heads x (2 halves x 3 rows)
    assert export.permute_rows(rows, 2).ravel().tolist() == [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11]


def test_no_lora_weights_is_an_error(tmp_path):
    with pytest.raises(export.ModelError, match="no LoRA weights"):
        export.write_adapter_gguf({}, 8, 9, 3, tmp_path / "x.gguf")
    import torch

    weights = {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(4, 576),
               "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": torch.zeros(576, 4),
               "base_model.model.lm_head.lora_A.weight": torch.zeros(4, 576)}  # fmt: skip
    with pytest.raises(export.ModelError, match="cannot export the LoRA weight base_model.model.lm_head.lora_A"):
        export.lora_pairs(weights, 9, 3)  # never a router without the weights it was trained with


def test_only_the_newest_merged_routers_are_kept(tmp_path):
    import os

    for age, name in enumerate(["d", "c", "b", "a"]):  # "a" is the oldest
        path = tmp_path / f"base-{name}-q8_0.gguf"
        path.write_bytes(b"GGUF")
        os.utime(path, ns=(1_000_000_000 * (10 - age), 1_000_000_000 * (10 - age)))
    (tmp_path / "notes.txt").write_text("not a router")
    removed = export.prune_merged(tmp_path, keep=3)
    assert [p.name for p in removed] == ["base-a-q8_0.gguf"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base-b-q8_0.gguf", "base-c-q8_0.gguf",
                                                          "base-d-q8_0.gguf", "notes.txt"]  # fmt: skip
