"""Training plumbing on a handful of steps (the real run is `skillcall train`; its product ships in router/)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil

import pytest

from finetune.base import (
    DEFAULT_BASE,
    cache_dir,
    converted_dir,
    gguf_architecture,
    load_base,
    prune_converted,
    resolve_gguf,
)
from finetune.dataset import DatasetOptions, build_dataset
from finetune.examples import EXAMPLES_DIR, load_examples
from finetune.prompts import load_template
from finetune.replay import learnt_keys, read_learnt, row_key
from finetune.train import (
    Encoded,
    LoraOptions,
    TrainError,
    TrainOptions,
    autocast,
    batch_order,
    call_logits,
    call_loss,
    collate,
    compile_layers,
    encode_row,
    evaluate_loss,
    forward_loss,
    head_loss,
    pick_precision,
    train,
)


@pytest.fixture(scope="module")
def base_model():
    return load_base()


@pytest.fixture(scope="module")
def tokenizer(base_model):
    return base_model[1]


@pytest.fixture(scope="module")
def llama_vocab():
    from llama_cpp import Llama

    return Llama(model_path=str(resolve_gguf(DEFAULT_BASE)), vocab_only=True, verbose=False)


def test_the_converted_base_is_cached_per_file_not_per_name(tmp_path):
    first, second = tmp_path / "a" / "model.gguf", tmp_path / "b" / "model.gguf"
    for path, content in ((first, b"GGUF one"), (second, b"GGUF two")):  # two fine-tunes, one name, one size
        path.parent.mkdir()
        path.write_bytes(content)
    assert converted_dir(first) != converted_dir(second) and converted_dir(first) == converted_dir(first)
    before = converted_dir(first)
    os.utime(first, ns=(1, 1))  # replaced in place
    assert converted_dir(first) != before and converted_dir(first).name.startswith("model-")


def test_converted_bases_of_gone_files_and_all_but_the_last_used_are_pruned(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    kept = tmp_path / "kept.gguf"
    kept.write_bytes(b"GGUF")
    folders = {}
    for age, (name, source) in enumerate([("new", kept), ("gone", tmp_path / "old-venv" / "x.gguf"),
                                          ("older", kept), ("oldest", kept)]):  # fmt: skip
        folder = folders[name] = cache_dir() / "hf-base" / name
        folder.mkdir(parents=True)
        (folder / "source.txt").write_text(f"{source}\n")
        os.utime(folder, ns=(10**18 - age * 10**9,) * 2)
    removed = prune_converted(keep=3)
    assert sorted(p.name for p in removed) == ["gone", "oldest"]  # "oldest" is fourth: over the limit
    assert sorted(p.name for p in (cache_dir() / "hf-base").iterdir()) == ["new", "older"]


@pytest.mark.parametrize(
    "text",
    ["<|im_start|>user\n", "What's the weather in São Paulo? Größe 東京 🙂", "<|im_end|>\n<|im_start|>assistant\n",
     'notes(action="add", note="buy 2 \\"oat\\" milks")<|im_end|>', "  spaced   out  ", "Otto, um, 15% of 80?"],
)  # fmt: skip
def test_transformers_and_llama_cpp_tokenize_alike(tokenizer, llama_vocab, text):
    assert tokenizer(text, add_special_tokens=False)["input_ids"] == llama_vocab.tokenize(
        text.encode(), add_bos=False, special=True
    )


def test_loss_is_on_the_call_tokens_only(tokenizer):
    template = load_template()
    row = encode_row(tokenizer, template, "", "What's the weather in Oslo?", 'weather(location="Oslo")')
    completion = tokenizer(template.render_completion('weather(location="Oslo")'), add_special_tokens=False)
    n = len(completion["input_ids"])
    assert row.labels[-n:] == row.input_ids[-n:] == completion["input_ids"]
    assert set(row.labels[:-n]) == {-100}
    assert tokenizer.decode(row.input_ids[: len(row.input_ids) - n]) == template.render("What's the weather in Oslo?")


def test_words_that_look_like_control_tokens_stay_words(tokenizer):
    template = load_template()
    row = encode_row(tokenizer, template, "", "say <|im_end|> now", "other()")
    prefix = tokenizer(template.prefix(), add_special_tokens=False)["input_ids"]
    said = tokenizer("say <|im_end|> now", add_special_tokens=False, split_special_tokens=True)["input_ids"]
    assert row.input_ids[len(prefix) : len(prefix) + len(said)] == said
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") not in said


def test_collate_pads_to_the_batch_and_masks_padding(tokenizer):
    template = load_template()
    rows = [encode_row(tokenizer, template, "", t, "other()") for t in ("hi", "a much longer utterance than hi")]
    batch = collate(rows, tokenizer.pad_token_id)
    width = max(len(r.input_ids) for r in rows)
    assert batch["input_ids"].shape == (2, width)
    short = len(rows[0].input_ids)
    assert batch["attention_mask"][0, short:].sum() == 0 and (batch["labels"][0, short:] == -100).all()


def test_call_loss_is_the_models_loss_with_the_prompt_logits_skipped(base_model):
    import torch

    model, tokenizer = base_model
    template = load_template()
    rows = [encode_row(tokenizer, template, "", text, call) for text, call in
            [("hi", "other()"), ("what's the weather like in new york", 'weather(location="new york")')]]  # fmt: skip
    batch = collate(rows, tokenizer.pad_token_id)
    with torch.no_grad():
        assert torch.allclose(call_loss(model, batch), model(**batch).loss, atol=1e-4)


def test_the_chunked_head_loss_is_the_cross_entropy_and_its_gradient():
    import torch

    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(50, 8, generator=generator)
    hidden = torch.randn(7, 8, generator=generator, requires_grad=True)
    targets = torch.randint(0, 50, (7,), generator=generator)
    loss = head_loss(hidden, weight, targets, chunk=3)  # three chunks, the last one short
    (2 * loss).backward()  # the backward pass scales the gradient computed in the forward pass
    ours, hidden.grad = hidden.grad, None
    expected = torch.nn.functional.cross_entropy(hidden @ weight.T, targets)
    (2 * expected).backward()
    assert torch.allclose(loss, expected, atol=1e-6) and torch.allclose(ours, hidden.grad, atol=1e-6)
    with torch.no_grad():
        assert torch.allclose(head_loss(hidden, weight, targets, chunk=4), expected, atol=1e-6)


def _batch(tokenizer):
    """Three rows of calls, collated."""
    rows = [encode_row(tokenizer, load_template(), "", text, call) for text, call in
            [("set a timer for 5 minutes", 'timer(duration="5 minutes")'), ("hi there", "other()"),
             ("what's the weather like in new york", 'weather(location="new york")')]]  # fmt: skip
    return collate(rows, tokenizer.pad_token_id)


def _lora(model, targets=("q_proj", "v_proj")):
    """``model`` with a LoRA adapter whose B is not zero (it starts at zero: this makes the adapter count)."""
    import torch
    from peft import LoraConfig, get_peft_model

    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=list(targets), task_type="CAUSAL_LM"))
    generator = torch.Generator().manual_seed(0)
    for name, parameter in lora.named_parameters():
        if "lora_B" in name:
            parameter.data = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype) * 0.05
    return lora


def _loss_and_grads(model, batch, loss_of=call_loss, context=None) -> tuple[float, list]:
    """The loss of ``batch`` (``loss_of``, computed in ``context``) and the gradients of the trainable weights."""
    with context or contextlib.nullcontext():
        loss = loss_of(model, batch)
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad()
    return loss.item(), grads


@pytest.mark.parametrize("targets", [("q_proj", "v_proj"), ("q_proj", "lm_head")])
def test_the_call_loss_of_an_adapter_trains_it_as_the_models_own_forward_would(targets):
    import torch

    model, tokenizer = load_base()  # float32: the two paths agree to rounding
    lora, batch = _lora(model, targets), _batch(tokenizer)  # an adapter on the head: the model's forward serves it
    picked = _loss_and_grads(lora, batch)  # the call tokens' hidden states, then the head in chunks
    whole = _loss_and_grads(lora, batch, forward_loss)
    assert picked[0] == pytest.approx(whole[0], abs=1e-5)
    assert all(torch.allclose(a, b, rtol=1e-3, atol=1e-6) for a, b in zip(picked[1], whole[1], strict=True))
    assert all(grad.abs().sum() > 0 for grad in picked[1])  # every adapter weight learns, the head's included


def test_compiled_layers_train_as_the_uncompiled_ones_and_keep_their_names():
    import torch

    model, tokenizer = load_base()
    lora, batch = _lora(model), _batch(tokenizer)
    from torch._dynamo.utils import counters

    names = [name for name, _ in lora.named_parameters()]
    eager = _loss_and_grads(lora, batch)
    assert compile_layers(lora, "cpu") == model.config.num_hidden_layers
    torch._dynamo.reset()  # nothing compiled before in this process is reused: the layers compile here
    counters.clear()
    compiled = _loss_and_grads(lora, batch)
    assert [name for name, _ in lora.named_parameters()] == names  # the adapter saves under the same keys
    # two compilations, none failed: the first layer (its input carries no gradient) and one for the other 29
    assert dict(counters["frames"]) == {"total": 2, "ok": 2}
    assert compiled[0] == pytest.approx(eager[0], rel=1e-4)
    assert all(torch.allclose(a, b, rtol=1e-2, atol=1e-5) for a, b in zip(compiled[1], eager[1], strict=True))


BROKEN_COMPILER_RUN = """
import math
from accelerate import Accelerator
from finetune.base import load_base
from finetune.prompts import load_template
from finetune.train import TrainOptions, collate, compile_layers, encode_row, optimizer_and_schedule, train_step
from finetune.train import with_lora

model, tokenizer = load_base()
lora = with_lora(model, TrainOptions().lora)
print("compiled", compile_layers(lora, "cpu"))
batch = collate([encode_row(tokenizer, load_template(), "", "hi there", "other()")], tokenizer.pad_token_id)
optimizer, scheduler = optimizer_and_schedule(lora, TrainOptions(), 10)
losses = [train_step(lora, batch, optimizer, scheduler, Accelerator(), "float32") for _ in range(2)]
print("trained", all(map(math.isfinite, losses)) and losses[1] < losses[0])
"""


def test_layers_that_fail_to_compile_train_uncompiled(tmp_path):
    import subprocess
    import sys

    compiler = tmp_path / "broken-c++"  # says its version, fails to compile anything: a broken toolchain
    compiler.write_text('#!/bin/sh\n[ "$1" = --version ] && exec g++ --version\necho "broken-c++: no" >&2\nexit 1\n')
    compiler.chmod(0o755)
    env = {**os.environ, "CXX": str(compiler), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")}  # nothing reused
    run = subprocess.run([sys.executable, "-c", BROKEN_COMPILER_RUN], env=env, capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "compiled 30" in run.stdout and "trained True" in run.stdout  # the layers were to compile, and trained
    assert "broken-c++" in run.stderr  # dynamo's warning: what failed


def test_without_a_cpp_compiler_the_layers_stay_uncompiled_and_it_says_why(base_model, caplog):
    import torch

    with torch._inductor.config.patch({"cpp.cxx": ("no-such-c++-compiler",)}):
        assert compile_layers(base_model[0], "cpu") == 0
    assert all(layer._compiled_call_impl is None for layer in base_model[0].model.layers)
    assert "needs a C++ compiler (InvalidCxxCompiler)" in caplog.text


def test_bfloat16_training_computes_the_float32_loss_and_keeps_the_adapter_in_float32(base_model):
    import torch

    model, tokenizer = base_model
    batch = _batch(tokenizer)
    half, _ = load_base(dtype="bfloat16")
    assert half.config._attn_implementation == "eager"  # sdpa's bfloat16 backward is ≈10× slower on a CPU
    with torch.no_grad(), autocast(half, "cpu", "bfloat16"):
        low, _, _ = call_logits(half, batch)
    with torch.no_grad():
        full, _, _ = call_logits(model, batch)
    top2 = full.topk(2, dim=-1).values
    clear = top2[:, 0] - top2[:, 1] > 0.5  # bfloat16 moves logits by ≈0.2 (at most ≈1.1 here): near-ties may flip
    assert clear.sum() >= 10 and bool((low.argmax(-1) == full.argmax(-1))[clear].all())
    with torch.no_grad(), autocast(half, "cpu", "bfloat16"):
        assert call_loss(half, batch).item() == pytest.approx(call_loss(model, batch).item(), rel=0.02)
    lora = _lora(half, ("q_proj",))
    assert {p.dtype for p in lora.parameters() if p.requires_grad} == {torch.float32}  # AdamW's updates stay exact

    layer = lora.base_model.model.model.layers[0].self_attn.q_proj
    with autocast(lora, "cpu", "bfloat16"):  # peft's cast of the LoRA input to float32 is off, and back on after
        assert not layer.cast_input_dtype_enabled
    assert layer.cast_input_dtype_enabled
    ours = _loss_and_grads(lora, batch, context=autocast(lora, "cpu", "bfloat16"))
    cast = _loss_and_grads(lora, batch, context=torch.autocast("cpu", torch.bfloat16))  # the same, with peft's cast
    assert ours[0] == cast[0] and all(torch.equal(a, b) for a, b in zip(ours[1], cast[1], strict=True))
    assert pick_precision("float32") == "float32" and pick_precision("bfloat16") == "bfloat16"  # as asked
    assert pick_precision("auto") in ("float32", "bfloat16")


def test_validation_counts_a_row_right_only_when_every_call_token_is_the_models_argmax(base_model):
    import torch

    model, tokenizer = base_model
    template = load_template()
    greedy = []
    for text in ("hi", "what's the weather like in new york", "open firefox please"):
        row = encode_row(tokenizer, template, "", text, "other()")
        prompt = row.input_ids[: row.labels.count(-100)]
        ids = list(prompt)
        with torch.no_grad():
            for _ in range(3 + len(text) % 3):  # calls of different lengths in one batch
                ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
        greedy.append(Encoded(ids, [-100] * len(prompt) + ids[len(prompt) :]))
    assert evaluate_loss(model, greedy, tokenizer.pad_token_id)["call_accuracy"] == 1.0
    last = greedy[1]
    wrong = Encoded(last.input_ids[:-1] + [last.input_ids[-1] + 1], last.labels[:-1] + [last.input_ids[-1] + 1])
    result = evaluate_loss(model, [greedy[0], wrong, greedy[2]], tokenizer.pad_token_id)
    assert result["call_accuracy"] == pytest.approx(2 / 3)


def test_batches_group_similar_lengths_and_cover_every_row_once():
    lengths = [random.Random(i).randint(5, 40) for i in range(203)]
    batches = batch_order(lengths, 8, seed=3)
    assert sorted(i for batch in batches for i in batch) == list(range(203)) and len(batches) == math.ceil(203 / 8)
    assert batch_order(lengths, 8, seed=3) == batches != batch_order(lengths, 8, seed=4)
    shuffled = list(range(203))
    random.Random(3).shuffle(shuffled)
    plain = [shuffled[k : k + 8] for k in range(0, 203, 8)]

    def padded(batches):
        return sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)

    assert padded(batches) < 0.8 * padded(plain)  # less padding, so less compute per epoch


@pytest.fixture(scope="module")
def data(tmp_path_factory, registry_module):
    out = tmp_path_factory.mktemp("data")
    build_dataset(load_examples([EXAMPLES_DIR], registry_module), DatasetOptions(out, seed=2))
    return out


@pytest.fixture(scope="module")
def registry_module():
    from skills import load_registry

    return load_registry()


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory, registry_module):
    out = tmp_path_factory.mktemp("router")
    options = TrainOptions(data=data, out=out, max_steps=3, batch_size=4, max_train_rows=20, max_eval_rows=8,
                           eval_every=2, lora={"r": 4, "alpha": 8}, precision="float32",
                           compile=False)  # fmt: skip  (compiled training: test_layers_that_fail_to_compile_...)
    steps = []
    return train(options, registry_module, steps.append), options, steps


def test_a_short_run_writes_the_whole_router(trained, registry_module):
    result, _, steps = trained
    out = result.out
    for name in ("router.json", "router.gguf", "loss.png", "adapter/adapter_config.json", "checkpoint/state.json"):
        assert (out / name).is_file(), name
    card = json.loads((out / "router.json").read_text())
    assert card["base"] == DEFAULT_BASE and card["template"] == "compact"
    assert set(card["skills"]) == set(registry_module.names)
    assert card["span_starts"] and all(key.split(".")[0] in card["skills"] for key in card["span_starts"])
    assert sum(card["skill_words"]["rows"].values()) == 20
    assert card["addressing"] == {"wake": "Otto", "share": 0.2, "filler_share": 0.15, "numbers_share": 0.15,
                                  "plain_share": 0.25}
    assert card["training"]["precision"] == "float32"  # the card records what the run trained in
    assert card["training"]["device"] == "cpu" or card["training"]["device"].startswith("cuda: ")
    assert len(card["examples_fingerprint"]) == 64
    assert card["training"]["steps"] == 3 and card["dataset"]["train_rows"] == 20
    assert card["dataset"]["seed"] == 2  # `skillcall eval` tests on that seed's test split
    assert 0 <= card["metrics"]["validation_call_accuracy"] <= 1
    evals = [h for h in result.history if "validation_loss" in h]
    assert [h["step"] for h in evals] == [2, 3]
    assert [(s.out, s.step, s.total, s.loss) for s in steps] == [(out, h["step"], 3, h["train_loss"])
                                                                 for h in result.history]  # fmt: skip
    assert [(s.step, s.validation_loss, s.call_accuracy) for s in steps if s.validation_loss is not None] == \
        [(h["step"], h["validation_loss"], h["validation_call_accuracy"]) for h in evals]  # fmt: skip
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_the_router_folder_holds_the_recipe_it_was_made_by(trained):
    from finetune.train import train_options, write_recipe

    result, options, _ = trained
    recipe = result.out / "recipe.toml"
    assert f"skillcall train --config {recipe}" in recipe.read_text()
    assert train_options(recipe, out=options.out).model_dump() == options.model_dump()  # where it goes: not in it
    assert train_options(recipe, out=options.out, seed=5).model_dump() == \
        options.model_copy(update={"seed": 5}).model_dump()  # fmt: skip
    write_recipe(TrainOptions(lora={"r": 4}), result.out)  # alpha unset follows the rank, over the recipe too
    assert train_options(recipe).lora.alpha == 8.0 and train_options(recipe, lora={"r": 2}).lora.alpha == 4.0


def test_lora_alpha_follows_the_rank_unless_given():
    assert (TrainOptions(lora={"r": 8}).lora.alpha, TrainOptions().lora.alpha) == (16.0, 32.0)
    assert TrainOptions(lora={"r": 8, "alpha": 4}).lora.alpha == 4.0


def test_the_exported_adapter_loads_in_llama_cpp(trained, registry_module):
    from assistant.routers import RouterOptions, load_router

    router = load_router(RouterOptions(router_dir=trained[0].out, threads=2, merge=False), registry_module)
    result = router.route_result("What's the weather in Oslo?")
    assert result.reason is None  # a call completed under the grammar, not the fallback to other()


def test_resume_continues_from_the_checkpoint(trained, registry_module):
    _, options, _ = trained
    result = train(options.model_copy(update={"max_steps": 4, "resume": True}), registry_module)
    assert result.card.training.steps == 4
    assert [h["step"] for h in result.history] == [1, 2, 3, 4]


def test_resume_refuses_a_checkpoint_started_another_way(trained, registry_module):
    _, options, _ = trained
    with pytest.raises(TrainError, match="another template, batch_size; train from scratch"):
        train(options.model_copy(update={"resume": True, "template": "chatml", "batch_size": 2}), registry_module)
    with pytest.raises(TrainError, match="another learning_rate; train from scratch"):  # not silently the old one
        train(options.model_copy(update={"resume": True, "learning_rate": 0.01}), registry_module)


def test_the_resume_fingerprint_of_default_options_is_the_one_earlier_checkpoints_hold(tmp_path):
    """Pinned: a checkpoint resumes only where its fingerprint matches, so these values must not move."""
    from finetune.train.checkpoint import fingerprint

    (tmp_path / "train.jsonl").write_text("a\n")
    (tmp_path / "validation.jsonl").write_text("b\n")
    expected = {
        "base": DEFAULT_BASE, "template": "compact", "skill_list": "none", "batch_size": 8, "seed": 0,
        "lora": {"r": 16, "alpha": 32.0, "dropout": 0.0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
        "data": "87428fc522803d31065e7bce3cf03fe475096631e5e07bbd7a0fde60c4cf25c7", "max_train_rows": None,
        "batching": "length-grouped", "wake": "Otto", "address_share": 0.2, "filler_share": 0.15,
        "numbers_share": 0.15, "plain_share": 0.25, "init": None, "learning_rate": 1.5e-3, "warmup_ratio": 0.05,
        "weight_decay": 0.0, "precision": "float32", "max_eval_rows": None,
        "validation": "0263829989b6fd954f72baaf2fc64bc2e2f01d692d4de72986ea808f6e99813f",
    }  # fmt: skip
    options = TrainOptions(data=tmp_path)
    assert fingerprint(options, "float32", replaying=False) == expected
    assert json.loads(json.dumps(expected)) == expected  # as state.json keeps it
    router = tmp_path / "router"
    retrain = TrainOptions(data=tmp_path, init=router, train_on_validation=True, replay=0.5)
    assert fingerprint(retrain, "bfloat16", replaying=True) == {
        **expected, "init": str(router), "learning_rate": 1.5e-4, "precision": "bfloat16",
        "train_on_validation": True, "replay": 0.5}  # fmt: skip
    assert "replay" not in fingerprint(retrain, "bfloat16", replaying=False)


@pytest.fixture(scope="module")
def small_data(data, tmp_path_factory):
    """The first rows of each split of ``data``: a run that reads every row reads only these."""
    out = tmp_path_factory.mktemp("small")
    for split, keep in (("train", 48), ("validation", 16)):
        rows = (data / f"{split}.jsonl").read_text().splitlines()[:keep]
        (out / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
    return out


def test_training_on_the_validation_rows_too_keeps_the_last_checkpoint(small_data, tmp_path, registry_module):
    data = small_data
    rows = [json.loads(line) for split in ("train", "validation") for line in (data / f"{split}.jsonl").open()]
    options = TrainOptions(data=data, out=tmp_path, max_steps=3, batch_size=4, max_eval_rows=8, eval_every=1,
                           learning_rate=0.3, lora={"r": 4, "alpha": 8}, precision="float32", compile=False,
                           export=False, train_on_validation=True)  # fmt: skip
    result = train(options, registry_module)
    card = result.card
    assert card.dataset.train_rows == len(rows) and card.dataset.validation_in_training is True
    assert sum(card.skill_words["rows"].values()) == len(rows)
    evals = [h for h in result.history if "validation_loss" in h]
    scores = [(h["validation_call_accuracy"], -h["validation_loss"]) for h in evals]
    assert scores.index(max(scores)) != 2  # a rate this high makes it worse, so the usual rule would pick another...
    assert card.metrics.best_step == 3  # ...and still the last is kept: seen rows cannot pick one
    assert card.metrics.validation_loss == round(evals[-1]["validation_loss"], 5)
    with pytest.raises(TrainError, match="another train_on_validation; train from scratch"):
        train(options.model_copy(update={"resume": True, "train_on_validation": False}), registry_module)
    after = train(options.model_copy(update={"out": tmp_path / "next", "init": tmp_path, "max_steps": 1,
                                             "train_on_validation": False}), registry_module)  # fmt: skip
    assert after.card.dataset.validation_in_training is True  # it starts from a router that trained on them


def test_init_starts_from_another_routers_adapter_and_refuses_one_trained_another_way(
    trained, tmp_path, registry_module
):
    from peft.utils import load_peft_weights

    result, options, _ = trained
    gentle = TrainOptions(init=result.out)  # two passes over what replay picks at a tenth of the rate, unless told
    assert (gentle.epochs, gentle.learning_rate) == (2.0, 1.5e-4) != (TrainOptions().epochs, TrainOptions().learning_rate)
    assert TrainOptions(init=result.out, epochs=3, learning_rate=1e-3).epochs == 3
    before = load_peft_weights(str(result.out / "adapter"))
    again = train(options.model_copy(update={"out": tmp_path / "again", "init": result.out, "max_steps": 1,
                                             "learning_rate": 1e-12, "export": False}), registry_module)  # fmt: skip
    after = load_peft_weights(str(again.out / "adapter"))
    assert set(after) == set(before) and all(bool((after[k] == before[k]).all()) for k in before)
    assert any(bool(v.any()) for k, v in before.items() if "lora_B" in k)  # trained: not the fresh zeros
    assert again.card.training.init == str(result.out)
    with pytest.raises(TrainError, match=r"trained with another lora \(lora=\{'r': 4"):
        rank8 = LoraOptions(r=8, alpha=8)
        train(options.model_copy(update={"out": tmp_path / "r8", "init": result.out, "lora": rank8}), registry_module)
    with pytest.raises(TrainError, match="not a router folder"):
        train(options.model_copy(update={"out": tmp_path / "x", "init": tmp_path}), registry_module)
    (tmp_path / "adapter").mkdir()
    (tmp_path / "router.json").write_text('{"base": ')  # cut short
    with pytest.raises(TrainError, match="router.json is unreadable .*; name another router, or train without --init"):
        train(options.model_copy(update={"out": tmp_path / "x", "init": tmp_path}), registry_module)


def test_a_retrain_from_a_router_trains_the_rows_it_has_not_learnt_and_a_share_of_the_others(
    trained, data, tmp_path, registry_module
):
    result, options, _ = trained
    learnt = read_learnt(result.out)
    rows = [json.loads(line) for line in (data / "train.jsonl").open()]
    assert 10 < len(learnt) <= 20  # the single-request rows of the subset it trained on (max_train_rows)
    known = [r for r in rows if row_key(r) in learnt]
    new = [r for r in rows if row_key(r) not in learnt and r["skill"] != "compound"][:2]
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in known + new))
    shutil.copy(data / "validation.jsonl", folder)
    again = train(TrainOptions(data=folder, out=tmp_path / "again", init=result.out, replay=0.5, batch_size=4,
                               max_eval_rows=4, lora={"r": 4, "alpha": 8}, precision="float32", compile=False,
                               export=False), registry_module)  # fmt: skip
    training = again.card.training
    size = 2 + round(0.5 * len(known))
    assert (training.new_rows, training.rows_per_epoch, training.replay) == (2, size, 0.5)
    assert training.steps == 2 * math.ceil(size / 4)  # two passes (init's default) in batches of 4
    assert read_learnt(again.out) == learnt | learnt_keys(new)  # what it knows now, for the next retrain
    shutil.copytree(result.out, tmp_path / "older", ignore=shutil.ignore_patterns("checkpoint"))
    (tmp_path / "older" / "learnt.txt").unlink()  # a router trained before routers listed their rows
    full = train(TrainOptions(data=folder, out=tmp_path / "full", init=tmp_path / "older", batch_size=4,
                              max_eval_rows=4, lora={"r": 4, "alpha": 8}, precision="float32", compile=False,
                              export=False), registry_module)  # fmt: skip
    rows_now = len(known) + len(new)
    assert (full.card.training.rows_per_epoch, full.card.training.replay) == (rows_now, 1.0)
    assert full.card.training.steps == math.ceil(rows_now / 4)  # every row, once: not two epochs of them


def test_missing_data_and_cpu_qlora_are_clear_errors(tmp_path, registry_module):
    with pytest.raises(TrainError, match="run `skillcall dataset"):
        train(TrainOptions(data=tmp_path, out=tmp_path / "r"), registry_module)
    (tmp_path / "train.jsonl").write_text("")
    (tmp_path / "validation.jsonl").write_text("")
    with pytest.raises(TrainError, match="needs a CUDA GPU"):
        train(TrainOptions(data=tmp_path, out=tmp_path / "r", four_bit=True), registry_module)


def test_only_llama_architecture_ggufs_are_exported_for_llama_cpp(tmp_path):
    import gguf

    from finetune.train.loop import _llama_architecture

    writer = gguf.GGUFWriter(str(tmp_path / "qwen.gguf"), "qwen2")  # q/k are not permuted for it: no export
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert not _llama_architecture(tmp_path / "qwen.gguf") and _llama_architecture(resolve_gguf(DEFAULT_BASE))
    (tmp_path / "bad.gguf").write_bytes(b"not a gguf")
    with pytest.raises(TrainError, match="bad.gguf is not a readable GGUF"):
        _llama_architecture(tmp_path / "bad.gguf")


def test_the_architecture_is_read_from_the_header_past_any_metadata_before_it(tmp_path):
    import struct

    def text(value: str) -> bytes:
        return struct.pack("<Q", len(value.encode())) + value.encode()

    tokens = struct.pack("<IQ", 8, 3) + b"".join(text(t) for t in ("<s>", "hello", "wörld"))  # an array of strings
    kvs = [text("tokenizer.ggml.tokens") + struct.pack("<I", 9) + tokens,
           text("general.alignment") + struct.pack("<II", 4, 32),
           text("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 2) + struct.pack("<ff", 0.5, 1.5),
           text("general.architecture") + struct.pack("<I", 8) + text("qwen3")]  # fmt: skip
    path = tmp_path / "late.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs))
    assert gguf_architecture(path) == "qwen3"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 2) + b"".join(kvs[:2]))
    assert gguf_architecture(path) is None
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 4) + b"".join(kvs)[:40])
    with pytest.raises(ValueError, match="ends early"):
        gguf_architecture(path)


def test_an_ensemble_trains_its_members_with_the_next_seeds_and_the_router_consults_them(
    small_data, tmp_path, registry_module
):
    from assistant.routers import RouterOptions, load_router

    options = TrainOptions(data=small_data, out=tmp_path, max_steps=1, batch_size=4, max_train_rows=8, max_eval_rows=4,
                           lora={"r": 4, "alpha": 8}, precision="float32", compile=False, members=2)  # fmt: skip
    result = train(options, registry_module)
    assert result.card.members == ["members/2"] == json.loads((tmp_path / "router.json").read_text())["members"]
    [member] = result.members
    assert member.out == tmp_path / "members" / "2" and (member.out / "router.gguf").is_file()
    assert (result.card.training.seed, member.card.training.seed) == (0, 1)
    assert "members" not in json.loads((member.out / "router.json").read_text())

    always = load_router(RouterOptions(router_dir=tmp_path, threads=2, consult_margin=1e9, merge=False),
                         registry_module)  # fmt: skip
    assert len(always.members) == 1
    assert [always.route_result(t).consulted for t in ("What's the weather in Oslo?", "hello")] == [1, 1]
    never = load_router(RouterOptions(router_dir=tmp_path, threads=2, consult_margin=0, merge=False), registry_module)
    assert never.members == [] and never.route_result("What's the weather in Oslo?").consulted == 0

    with pytest.raises(TrainError, match="is an ensemble of 2; train at most that many --members from it"):
        train(options.model_copy(update={"out": tmp_path / "x", "init": tmp_path, "members": 3}), registry_module)
    (tmp_path / "members" / "notes.txt").write_text("mine")
    # the README's retrain: each router from itself, in place, seeded on from the first
    again = train(options.model_copy(update={"init": tmp_path, "seed": 5, "export": False}), registry_module)
    assert [r.card.training.init for r in (again, *again.members)] == [str(tmp_path), str(member.out)]
    assert [r.card.training.seed for r in (again, *again.members)] == [5, 6]
    assert again.card.members == ["members/2"] and again.members[0].out == member.out
    shutil.rmtree(member.out / "adapter")
    before = (tmp_path / "router.json").read_text()
    with pytest.raises(TrainError, match=r"--init .*members/2: not a router folder"):
        train(options.model_copy(update={"init": tmp_path}), registry_module)
    assert (tmp_path / "router.json").read_text() == before  # refused before anything was trained
    single = train(options.model_copy(update={"members": 1, "export": False}), registry_module)
    assert "members" not in single.card.to_json() and not member.out.exists()  # no stale members left behind...
    assert (tmp_path / "members" / "notes.txt").read_text() == "mine"  # ...and nothing else removed
