"""One llama.cpp model and what it has evaluated: the only code that reaches into llama-cpp-python's insides.

The llama.cpp router keeps a prompt prefix evaluated once and, for each utterance, evaluates several tokens in one
batch and reads the logits after each of them (drafted tokens are checked that way). ``Llama.eval`` keeps only the
last logits, so ``decode`` fills the batch itself, through ``Llama``'s private ``_ctx`` and ``_batch``; a
llama-cpp-python that renames them breaks this file alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class LlamaSession:
    """A ``llama_cpp.Llama`` with its prompt prefix evaluated once; every routing starts again from there."""

    def __init__(self, llm: Any) -> None:
        import llama_cpp
        import numpy as np

        self.llm, self._llama_cpp, self._np = llm, llama_cpp, np
        self.n_vocab: int = llm.n_vocab()
        self.prefix: list[int] = []

    @property
    def n_tokens(self) -> int:
        """Tokens in the cache: the prefix, the utterance and what was evaluated of the call."""
        return self.llm.n_tokens

    @property
    def n_batch(self) -> int:
        return self.llm.n_batch

    @property
    def model_path(self) -> Path:
        return Path(self.llm.model_path)

    @property
    def eos(self) -> int:
        return self.llm.token_eos()

    def tokens(self, text: str, special: bool) -> list[int]:
        """``text`` as token ids, with or without special tokens (``<|im_end|>``) read as such."""
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def pieces(self) -> list[bytes]:
        """The bytes of each token of the vocabulary (byte-level tokens may hold part of a character)."""
        return [self.llm.detokenize([token]) for token in range(self.n_vocab)]

    def start(self, prefix: list[int]) -> None:
        """Evaluate ``prefix`` from an empty cache, once; ``restart`` goes back to it."""
        self.prefix = prefix
        self.llm.reset()
        self.llm.eval(prefix)

    def restart(self) -> None:
        """Forget everything after the prefix (the last utterance and its call)."""
        self.llm.n_tokens = len(self.prefix)

    def eval(self, tokens: list[int]) -> None:
        """Evaluate ``tokens`` after what is cached; ``logits()`` then reads the logits after the last."""
        self.llm.eval(tokens)

    def forget(self, count: int) -> None:
        """Drop the last ``count`` tokens from the cache (drafted tokens the model did not confirm)."""
        self.llm.n_tokens -= count

    def logits(self, index: int = -1) -> Any:
        """The logits after the batch's token ``index`` (-1: the last evaluated), as a view of llama.cpp's buffer:
        valid until the next evaluation."""
        pointer = self._llama_cpp.llama_get_logits_ith(self.llm._ctx.ctx, index)
        return self._np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def decode(self, pending: list[int], draft: list[int]) -> list[Any]:
        """Evaluate ``pending + draft`` in one batch after what is cached; the logits after the last pending token
        and after each draft token."""
        llm, tokens = self.llm, pending + draft
        llm._ctx.kv_cache_seq_rm(-1, llm.n_tokens, -1)
        llm._batch.set_batch(batch=tokens, n_past=llm.n_tokens, logits_all=False)
        first = len(pending) - 1
        for i in range(first, len(tokens)):
            llm._batch.batch.logits[i] = True
        llm._ctx.decode(llm._batch)
        llm.input_ids[llm.n_tokens : llm.n_tokens + len(tokens)] = tokens
        llm.n_tokens += len(tokens)
        return [self.logits(i) for i in range(first, len(tokens))]


def utf8_prefix(data: bytes) -> str | None:
    """The text of ``data``, less an incomplete character at its very end (byte-level tokens split characters);
    None when the bytes are not UTF-8 at all."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.end == len(data):
            return data[: exc.start].decode("utf-8", errors="strict")
        return None
