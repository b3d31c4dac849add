"""The default router: llama.cpp on the CPU with the shipped LoRA adapter and constrained greedy decoding.

The base and the adapter are merged once into a cached Q8_0 GGUF (bases under 1 GB); the prompt prefix is evaluated
once (``LlamaSession``); each routing evaluates the utterance and then the call under a grammar built from the live
registry (spans of the utterance, forced tokens where only one continuation is possible), with drafted tokens
checked in the same batch (``Drafter``). A router trained with ``--members`` asks its ensemble's other routers about
the skill where its own first token is unclear (``router.consult_margin``).
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune.base import ModelError, resolve_gguf
from finetune.card import ROUTER_CARD, RouterCard
from finetune.export import check_adapter_gguf, merged_router
from finetune.prompts import clean_utterance

from ..constrain import COMPLETE, END, NO, CallAcceptor
from .base import Router, RouteResult, read_card, retrain_command
from .drafting import Drafter
from .session import LlamaSession, utf8_prefix

MERGE_MAX_BYTES = 1 << 30
"""Bigger bases keep the adapter applied live: a merged Q8_0 of a 7B model is larger and slower than its Q4."""


@dataclass
class _Call:
    """A call being decoded: its tokens and text so far, and how they came."""

    generated: list[int] = field(default_factory=list)
    """Every token of the call: picked by the model or forced."""
    raw: bytes = b""
    forced: int = 0
    drafted: int = 0
    evaluations: int = 0
    reason: str | None = None
    """Why no call came out (the token bound, no valid token), if none did."""
    done: bool = False

    def add(self, tokens: list[int], pieces: list[bytes], forced: bool = False) -> None:
        self.generated += tokens
        self.raw += b"".join(pieces[token] for token in tokens)
        self.forced += len(tokens) if forced else 0


@dataclass
class LlamaCppRouter(Router):
    """The default: llama.cpp on the CPU with the shipped LoRA adapter and constrained greedy decoding."""

    name: str = "llama.cpp"

    def __post_init__(self) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelError("the llama.cpp router needs llama-cpp-python: pip install llama-cpp-python") from exc
        import numpy as np

        self._np, self._llama_cpp = np, llama_cpp
        base = resolve_gguf(self.options.base)
        if base is None:
            raise ModelError(f"the llama.cpp router needs a .gguf base, not {self.options.base!r}")
        router_dir = self.options.router_dir
        self.session = self._open(base, self._adapter(router_dir, self.card) if router_dir is not None else None)
        self.pieces = self.session.pieces()
        self._sorted_pieces = sorted(set(self.pieces))
        self._by_piece: dict[bytes, list[int]] = {}
        for token, piece in enumerate(self.pieces):
            self._by_piece.setdefault(piece, []).append(token)
        template = self._template()
        self.template = template
        ends = {self.session.eos, *(t for stop in template.stop for t in self.session.tokens(stop, special=True)[:1])}
        for token in ends:  # where a sequence may go on or end, the model's end token is the grammar's END
            self.pieces[token] = END.encode()
        self.prefix_tokens = self.session.tokens(template.prefix(self._skills_text()), special=True)
        self.suffix_tokens = self.session.tokens(template.after, special=True)
        needed = len(self.prefix_tokens) + len(self.suffix_tokens) + self.options.max_tokens + 16  # 16: an utterance
        if needed > self.options.n_ctx:
            raise ModelError(f"the prompt ({len(self.prefix_tokens)} tokens) and a call ({self.options.max_tokens}) "
                             f"do not fit router.n_ctx = {self.options.n_ctx}; set it to {needed} or more "
                             "(1024 by default)")  # fmt: skip
        self.session.start(self.prefix_tokens)  # evaluated once; every routing starts from here
        self.drafter = Drafter(lambda text: self.session.tokens(text, special=False), self.pieces, self.registry,
                               self.card.span_starts if self.card else None,
                               self.card.skill_words if self.card else None)  # fmt: skip
        self.members = self._members(base)

    def _members(self, base: Path) -> list[LlamaSession]:
        """The ensemble's other routers (``skillcall train --members``), each with the prefix evaluated; none
        where ``consult_margin`` is 0."""
        router_dir = self.options.router_dir
        try:
            folders = self.card.member_folders() if self.card and self.options.consult_margin > 0 else []
        except ValueError as exc:
            raise ModelError(f"{Path(router_dir) / ROUTER_CARD}: {exc}; rebuild the router with `skillcall train`, "
                             "or set router.consult_margin = 0 to route with it alone") from None  # fmt: skip
        alone = f"or set router.consult_margin = 0 to route with {router_dir} alone"
        members = []
        for folder in folders:
            member_dir = Path(router_dir) / folder
            if not (member_dir / ROUTER_CARD).is_file():
                raise ModelError(f"{member_dir}, a router of this ensemble, is missing; train the ensemble again "
                                 f"({retrain_command(router_dir, self.card, init=False)}), {alone}")  # fmt: skip
            member_card = read_card(member_dir)
            differs = self.card.prompt_differences(member_card)
            if differs:
                raise ModelError(f"{member_dir} was trained with another {', '.join(differs)} than {router_dir}; "
                                 f"retrain the ensemble with {retrain_command(router_dir, self.card)}, {alone}")
            member = self._open(base, self._adapter(member_dir, member_card))
            member.start(self.prefix_tokens)
            members.append(member)
        return members

    def _adapter(self, router_dir: Path, card: RouterCard) -> Path:
        """A trained router's llama.cpp adapter file."""
        if not card.files.gguf:  # trained from a base llama.cpp cannot read
            raise ModelError(f"{router_dir} has no llama.cpp file (its base {card.base} is not a "
                             "llama-architecture GGUF); serve it with router.kind = \"transformers\"")  # fmt: skip
        adapter = Path(router_dir) / card.files.gguf
        if not adapter.is_file():
            raise ModelError(f"router adapter {adapter} is missing; rebuild it with `skillcall train`")
        return adapter

    def _open(self, base: Path, adapter: Path | None) -> LlamaSession:
        """llama.cpp on the base with the adapter: merged into a cached Q8_0 GGUF for a small base, else live."""
        model = base
        if adapter is not None and self.options.merge and base.stat().st_size < MERGE_MAX_BYTES:
            try:
                model, adapter = merged_router(base, adapter), None  # checks the adapter before it merges it
            except OSError as exc:
                raise ModelError(f"cannot write the merged router to the cache ({exc}); free some space, or set "
                                 "router.merge = false to apply the adapter at run time") from None  # fmt: skip
        elif adapter is not None:
            check_adapter_gguf(adapter, base)
        threads = self.options.threads or default_threads()
        try:
            return LlamaSession(self._llama_cpp.Llama(
                model_path=str(model), lora_path=str(adapter) if adapter else None, n_ctx=self.options.n_ctx,
                n_batch=256, n_threads=threads, n_threads_batch=threads, verbose=False,
            ))  # fmt: skip
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp cannot load {adapter or model} ({exc}); delete it if it is a cached merged "
                             "router, or rebuild the router with `skillcall train`") from None  # fmt: skip

    def _route(self, text: str, started: float) -> RouteResult:
        """Constrained greedy decoding, a batch at a time: each batch evaluates the tokens still pending (the
        utterance, a token the model picked, forced ones) and a draft of what may follow; the model's picks are
        read from the batch's logits for as long as they confirm the draft."""
        utterance = clean_utterance(text)
        tokens = self.session.tokens(utterance, special=False) + self.suffix_tokens
        room = self.options.n_ctx - len(self.prefix_tokens) - self.options.max_tokens
        tokens = tokens[-room:] if len(tokens) > room else tokens
        self.session.restart()  # drop the last utterance; keep the evaluated prefix
        if not self.options.constrain:
            self.session.eval(tokens)
            return self._route_free(text, tokens, started)
        acceptor = CallAcceptor(self.registry, utterance, spans=self.options.spans,
                                known_values=self.options.known_values)
        draft = self.drafter.first(utterance, acceptor, min(self.options.draft_tokens, self.options.max_tokens))
        pending = tokens
        if len(tokens) + len(draft) > self.session.n_batch:  # a long utterance: all but its last token first
            self.session.eval(tokens[:-1])
            pending = tokens[-1:]
        call, consulted = _Call(), 0
        while True:
            evaluated = self.drafter.needed(call.raw, draft, acceptor)
            rows = self.session.decode(pending, draft[:evaluated])  # rows[k]: the logits after draft[:k]
            call.evaluations += 1
            if call.evaluations == 1:
                rows[0], consulted = self._consult(rows[0], tokens)
            confirmed = self._confirm(call, acceptor, rows, draft)
            if confirmed is None:
                break
            kept, pending, forced = confirmed
            self.session.forget(evaluated - kept)  # the draft tokens the model did not confirm
            call.add(forced, self.pieces, forced=True)  # appended without asking, evaluated in the next batch
            room = self.options.max_tokens - len(call.generated)  # the token bound keeps the cache within n_ctx
            if room < 0:
                call.reason = f"no complete call within {self.options.max_tokens} tokens"
                break
            draft = self.drafter.next(call.raw, acceptor, min(room, self.options.draft_tokens))
        return self._finish(text, call.raw.decode("utf-8", "replace"), started, prompt_tokens=len(tokens),
                            generated_tokens=len(call.generated) - call.forced, forced_tokens=call.forced,
                            drafted_tokens=call.drafted, evaluations=call.evaluations, consulted=consulted,
                            reason=call.reason)  # fmt: skip

    def _confirm(self, call: _Call, acceptor: CallAcceptor, rows: list[Any],
                 draft: list[int]) -> tuple[int, list[int], list[int]] | None:  # fmt: skip
        """Pick tokens from a batch's ``rows`` of logits while they confirm the ``draft`` (drafted forced tokens
        included): how many draft tokens were kept, the tokens to evaluate next and the forced ones among them;
        None once the call is whole or cannot go on (``call.done``, ``call.reason``)."""
        kept = 0
        while True:
            if len(call.generated) >= self.options.max_tokens:
                call.reason = f"no complete call within {self.options.max_tokens} tokens"
                return None
            token = self._pick(call.raw, acceptor, rows[kept])
            if token is None:
                call.reason = "no token continues a valid call"
                return None
            hit = kept < len(draft) and token == draft[kept]
            call.drafted += hit
            call.add([token], self.pieces)
            so_far = utf8_prefix(call.raw)
            if so_far is None or acceptor.state(so_far)[0] == COMPLETE:
                call.done = True  # stop at the closing parenthesis: no end token needed
                return None
            forced = acceptor.forced(so_far)
            if forced and acceptor.state(so_far + forced)[0] == COMPLETE:
                call.raw += forced.encode()
                call.done = True
                return None
            extra = self._force(call.generated, so_far + forced, acceptor) if forced else []
            if not hit:
                return kept, [token, *extra], extra
            kept += 1
            if extra and draft[kept : kept + len(extra)] == extra:
                kept += len(extra)  # the forced tokens were drafted too: cached already
                call.add(extra, self.pieces, forced=True)
                extra = []
            if extra:
                return kept, extra, extra
            # else the next row follows the confirmed tokens

    def _consult(self, logits: Any, tokens: list[int]) -> tuple[Any, int]:
        """The first token's log-probabilities, from the ensemble's mean probability when this router's likeliest
        token leads the next by less than ``consult_margin`` (each member reads the utterance after its cached
        prefix), else this router's own logits; and how many members were asked."""
        np = self._np
        top = np.partition(logits, -2)[-2:]
        if not self.members or top[1] - top[0] >= self.options.consult_margin:
            return logits, 0
        probabilities = _softmax(np, logits)
        for member in self.members:
            member.restart()
            member.eval(tokens)
            probabilities += _softmax(np, member.logits())
        return np.log(probabilities / (1 + len(self.members))), len(self.members)

    def _route_free(self, text: str, tokens: list[int], started: float) -> RouteResult:
        """Unconstrained greedy decoding (``constrain = false``): up to a stop string or the token bound."""
        stops = [s.encode() for s in self.template.stop]
        generated, raw, reason = [], b"", None
        first, consulted = self._consult(self.session.logits(), tokens)
        while True:
            token = int((first if not generated else self.session.logits()).argmax())
            if token == self.session.eos:
                break
            generated.append(token)
            raw += self.pieces[token]
            if any(stop in raw for stop in stops):
                break
            if len(generated) >= self.options.max_tokens:
                reason = f"no complete call within {self.options.max_tokens} tokens"
                break
            self.session.eval([token])
        for stop in stops:
            raw = raw.split(stop)[0]
        return self._finish(text, raw.decode("utf-8", "replace"), started, prompt_tokens=len(tokens),
                            generated_tokens=len(generated), evaluations=len(generated), consulted=consulted,
                            reason=reason)  # fmt: skip

    def _force(self, generated: list[int], target: str, acceptor: CallAcceptor) -> list[int]:
        """Tokens for the forced text, as the tokenizer writes ``target`` (how the router was trained), when that
        extends what was generated. The last one is held back when a longer token could merge it with what
        follows (``"`` + ``,`` is one token, ``",``) and the grammar accepts that: then the model chooses."""
        canonical = self.session.tokens(target, special=False)
        if canonical[: len(generated)] != generated or len(canonical) == len(generated):
            return []
        extra = canonical[len(generated) :]
        last = self.pieces[extra[-1]]
        head = target.encode()[: len(target.encode()) - len(last)]
        start = bisect.bisect_right(self._sorted_pieces, last)
        while start < len(self._sorted_pieces) and self._sorted_pieces[start].startswith(last):
            text = utf8_prefix(head + self._sorted_pieces[start])
            if text is not None and acceptor.state(text)[0] != NO:
                return extra[:-1]
            start += 1
        return extra

    def _pick(self, raw: bytes, acceptor: CallAcceptor, logits: Any) -> int | None:
        """The most likely token that keeps the text a valid call prefix (greedy); where the calls may end or go
        on, the end token must lead by ``join_margin``."""
        np = self._np
        margin = self.options.join_margin

        def acceptable(token: int) -> bool:
            piece = self.pieces[token]
            text = utf8_prefix(raw + piece) if piece else None
            if text is None:
                return False
            tail = (raw + piece)[len(text.encode()) :]  # the start of a character split across tokens
            return acceptor.continues(text, tail) if tail else acceptor.state(text)[0] != NO

        def ends(token: int) -> bool:  # the calls would be whole with it, and could stop there
            text = utf8_prefix(raw + self.pieces[token])
            return text is not None and (text.endswith(END) or END in (acceptor.state(text)[1] or ()))

        for width in (16, 256, 4096):
            top = np.argpartition(logits, -width)[-width:]
            ranked = top[np.argsort(-logits[top])]
            for rank, token in enumerate(ranked):
                if not acceptable(token):
                    continue
                if margin and ends(token):  # going on instead, if the model nearly favours it
                    for other in ranked[rank + 1 :]:
                        if logits[other] < logits[token] - margin:
                            break
                        if acceptable(other) and not ends(other):
                            return int(other)
                return int(token)
        # rare (an untuned model): the tokens that spell the start of an allowed fixed string, else all of them
        so_far = utf8_prefix(raw)
        options = acceptor.state(so_far)[1] if so_far is not None else None
        candidates = [t for option in options or () for end in range(1, len(option.encode()) + 1)
                      for t in self._by_piece.get(option.encode()[:end], ())]  # fmt: skip
        if candidates:
            return int(max(candidates, key=lambda t: logits[t]))
        for token in np.argsort(-logits):
            if acceptable(token):
                return int(token)
        return None




def _softmax(np: Any, logits: Any) -> Any:
    shifted = np.exp(logits.astype(np.float64) - logits.max())
    return shifted / shifted.sum()


def default_threads() -> int:
    """The router's threads when ``router.threads`` is unset: one fewer than the cores this process may run on, at
    most 4, at least 1. llama.cpp's threads meet at a barrier after every layer, so with one on every core a single
    other busy program stalls each token; leaving a core free keeps routing steady on a desktop that is never idle
    (on the 2-vCPU EPYC, beside one spinning process: 1 thread, p50 1.2x its idle figure; 2 threads, 3.5x — see
    docs/benchmarks.md, `bench/router_bench.py --busy`). Beyond 4, a 135M model's tokens get no faster."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(4, cores - 1))

