"""Drafting for the llama.cpp router: tokens guessed ahead and checked by the model in the same batch as the
pending ones, so that a confirmed guess saves an evaluation of its own.

The guess: the grammar's forced text, an argument rather than ``)`` at each choice of fixed strings, and for a
span the rest of the utterance (prompt-lookup drafting) from the value so far, or, before it begins, from after the
last word that usually precedes it in the training rows (the card's ``span_starts``); before the model has read the
utterance, the skill its words point to (the card's ``skill_words``). Only tokens the model picks itself are kept,
so the call is the one token-by-token decoding writes (up to float rounding on near-ties: batched and single-token
kernels round differently). On a CPU an extra token in a batch costs about a third of an evaluation of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from finetune.drafting import likely_skill
from skills import Registry

from ..constrain import COMPLETE, END, PARTIAL, CallAcceptor
from .session import utf8_prefix


class Drafter:
    """Guesses of the next tokens of a call, from the grammar, the utterance and the training rows' statistics."""

    def __init__(self, tokens: Callable[[str], list[int]], pieces: list[bytes], registry: Registry,
                 span_starts: dict[str, list[str]] | None, skill_words: dict[str, Any] | None) -> None:  # fmt: skip
        self.tokens, self.pieces, self.registry = tokens, pieces, registry
        self.span_starts, self.skill_words = span_starts, skill_words or {}

    def first(self, utterance: str, acceptor: CallAcceptor, room: int) -> list[int]:
        """A whole call guessed before the model has read the utterance, for the utterance's own batch: the skill
        the words point to, when it takes arguments (a call without any is done after one evaluation anyway),
        then the rest as ``next`` guesses it. Right, it saves a second evaluation."""
        skill = likely_skill(utterance, self.skill_words) if room > 0 else None
        if skill not in self.registry or not self.registry.get(skill).parameters:
            return []
        return self.tokens(skill + self._guess(skill, acceptor))[:room]

    def next(self, raw: bytes, acceptor: CallAcceptor, room: int) -> list[int]:
        """A guess at the tokens after ``raw`` (at most ``room``)."""
        so_far = utf8_prefix(raw)
        if so_far is None or room <= 0:
            return []
        guess = self._guess(so_far, acceptor)
        return self.tokens(guess)[:room] if guess else []

    def needed(self, raw: bytes, draft: list[int], acceptor: CallAcceptor) -> int:
        """How many draft tokens to evaluate: all up to the one that completes the call (with its forced rest).
        That one is only checked against the logits before it; the logits after it are never read."""
        for count, token in enumerate(draft):
            raw += self.pieces[token]
            text = utf8_prefix(raw)
            if text is not None and acceptor.state(text + acceptor.forced(text))[0] == COMPLETE:
                return count
        return len(draft)

    def _guess(self, so_far: str, acceptor: CallAcceptor) -> str:
        """The likeliest rest of the call after ``so_far``."""
        guess = acceptor.forced(so_far)
        for _ in range(4):
            status, options = acceptor.state(so_far + guess)
            if status != PARTIAL or not options or END in options:  # a call is whole: the model says if more follow
                break
            choice = next((option for option in options if option != ")"), options[0])
            guess += choice + acceptor.forced(so_far + guess + choice)
        return guess + acceptor.span_rest(so_far + guess, self.span_starts)
