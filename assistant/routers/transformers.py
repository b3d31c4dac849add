"""The transformers router: base + PEFT adapter in PyTorch, for a GPU user's fine-tuned 7B."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.base import ModelError
from finetune.card import ADAPTER_DIR
from finetune.prompts import clean_utterance

from ..constrain import COMPLETE, END, NO, PARTIAL, CallAcceptor
from .base import Router, RouteResult

logger = logging.getLogger(__name__)


@dataclass
class TransformersRouter(Router):
    """Base + PEFT adapter in PyTorch (a GPU user's fine-tuned 7B); greedy under the llama.cpp router's call
    grammar (``constrain``, ``spans``), parsed and validated."""

    name: str = "transformers"

    def __post_init__(self) -> None:
        from finetune.base import load_base

        base = self.card.base if self.card and self.card.base is not None else self.options.base
        self.model, self.tokenizer = load_base(base)  # a ModelError naming the extra when PyTorch is missing
        import torch

        self._torch = torch
        if self.options.router_dir is not None:
            from peft import PeftModel

            adapter = Path(self.options.router_dir) / ADAPTER_DIR
            if not (adapter / "adapter_config.json").is_file():
                raise ModelError(f"PEFT adapter {adapter} is missing; rebuild it with `skillcall train`")
            try:
                self.model = PeftModel.from_pretrained(self.model, adapter)
            except Exception as exc:  # noqa: BLE001 - bad JSON, a truncated safetensors file, wrong shapes ...
                raise ModelError(f"PEFT adapter {adapter} is unreadable ({type(exc).__name__}: {exc}); rebuild it "
                                 "with `skillcall train`") from None  # fmt: skip
        if self.card and self.card.members:
            logger.info("the transformers router routes with %s alone; its ensemble's other routers are asked by the "
                        "llama.cpp router", self.options.router_dir)  # fmt: skip
        if torch.cuda.is_available():
            self.model = self.model.to("cuda")
        self.model.eval()
        self.template = self._template()
        self._ends = [*self.template.stop, *([self.tokenizer.eos_token] if self.tokenizer.eos_token else [])]

    def _route(self, text: str, started: float) -> RouteResult:
        from finetune.train.encoding import encode_row

        encoded = encode_row(self.tokenizer, self.template, self._skills_text(), text, "")
        prompt = encoded.input_ids[: len(encoded.input_ids) - sum(1 for x in encoded.labels if x != -100)]
        ids = self._torch.tensor([prompt], device=self.model.device)
        if self.options.constrain:
            return self._constrained(text, started, ids)
        with self._torch.no_grad():
            output = self.model.generate(input_ids=ids, attention_mask=self._torch.ones_like(ids), do_sample=False,
                                         max_new_tokens=self.options.max_tokens,
                                         pad_token_id=self.tokenizer.pad_token_id)  # fmt: skip
        new = output[0, len(prompt) :].tolist()
        raw = self.tokenizer.decode(new, skip_special_tokens=False)
        for stop in self.template.stop:
            raw = raw.split(stop)[0]
        return self._finish(text, raw, started, prompt_tokens=len(prompt), generated_tokens=len(new))

    def _constrained(self, text: str, started: float, ids: Any) -> RouteResult:
        """Greedy decoding that takes, at each step, the likeliest token the call's grammar still accepts (the
        llama.cpp router's constraint: loaded skills, real arguments, spans of the utterance), until the call
        is complete."""
        utterance = clean_utterance(text)  # what the prompt holds, so what spans are of
        acceptor = CallAcceptor(self.registry, utterance, spans=self.options.spans,
                                known_values=self.options.known_values)
        # byte-level tokens split characters: a text ending in part of one (U+FFFD when decoded) may go on where a
        # character of the utterance starting with such a byte could follow
        firsts = {c.encode()[:1] for c in utterance if not c.isascii()}
        prompt_tokens, new, raw, status, past, reason = ids.shape[1], [], "", PARTIAL, None, None
        with self._torch.no_grad():
            while status != COMPLETE:
                if len(new) == self.options.max_tokens:
                    reason = f"no complete call within {self.options.max_tokens} tokens: {raw!r}"
                    break
                output = self.model(input_ids=ids, past_key_values=past, use_cache=True)
                past, logits = output.past_key_values, output.logits[0, -1]
                chosen = self._likeliest_valid(acceptor, firsts, logits, new)
                if chosen is None:
                    reason = f"no token continues {raw!r} into a valid call"
                    break
                token, raw, status = chosen
                new.append(token)
                ids = self._torch.tensor([[token]], device=self.model.device)
        return self._finish(text, raw, started, prompt_tokens=prompt_tokens, generated_tokens=len(new),
                            reason=reason)  # fmt: skip

    def _likeliest_valid(self, acceptor: CallAcceptor, firsts: set[bytes], logits: Any,
                         new: list[int]) -> tuple[int, str, str] | None:  # fmt: skip
        """The likeliest next token after ``new`` that keeps the text a valid call's prefix, with the text and its
        grammar status: the top 64 first, the whole vocabulary only when none of them does."""
        for ranked in (lambda: logits.topk(64).indices.tolist(), lambda: logits.argsort(descending=True)[64:].tolist()):
            for token in ranked():
                candidate = self.tokenizer.decode(new + [token], skip_special_tokens=False)
                for end in self._ends:  # where a sequence may go on or end, the end token is the grammar's END
                    candidate = candidate.replace(end, END)
                if not candidate.endswith("\ufffd"):
                    status = acceptor.state(candidate)[0]
                    if status != NO:
                        return token, candidate, status
                elif any(acceptor.continues(candidate[:-1], first) for first in firsts):
                    return token, candidate, PARTIAL
        return None
