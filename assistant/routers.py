"""Routers: utterance text -> one validated ``SkillCall``, behind one interface.

- ``llama.cpp`` (default): the bundled SmolLM2 GGUF plus the shipped LoRA adapter (merged once into a cached
  Q8_0 GGUF), constrained decoding from the live registry (spans of the utterance, forced tokens where only one
  continuation is possible), drafted tokens checked in one batch, the prompt prefix evaluated once and reused.
- ``transformers``: base + PEFT adapter in PyTorch, for a GPU user's fine-tuned 7B.
- ``openai``: function calling against any OpenAI-compatible endpoint (OpenAI, vLLM, llama-server).

Anything a model writes that does not validate becomes ``other()`` with a logged reason, never an exception.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from finetune.base import DEFAULT_BASE, ModelError, resolve_gguf
from finetune.card import ADAPTER_DIR, ROUTER_CARD, ROUTER_DIR, RouterCard, load_card
from finetune.drafting import likely_skill
from finetune.export import check_adapter_gguf, merged_router
from finetune.prompts import SkillList, clean_utterance, load_template, skills_text
from skills import MAX_CALLS, SEPARATOR, CallError, CallSequence, Registry, SkillCall, UserPath

from .constrain import COMPLETE, END, NO, PARTIAL, CallAcceptor

logger = logging.getLogger(__name__)
OTHER = SkillCall("other")
MERGE_MAX_BYTES = 1 << 30
"""Bigger bases keep the adapter applied live: a merged Q8_0 of a 7B model is larger and slower than its Q4."""


class RouterOptions(BaseModel):
    """Which router, with which model files. One ``[router]`` section of the config."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["llama.cpp", "transformers", "openai"] = Field("llama.cpp", description="Which router.")
    base: str = Field(DEFAULT_BASE, description="Base model: the bundled GGUF, a .gguf path, or an HF model.")
    router_dir: UserPath | None = Field(
        ROUTER_DIR, description="Trained router folder (router.json, router.gguf, adapter/); None = untuned base."
    )
    template: str | None = Field(None, description="Prompt template; None = the one the router was trained with.")
    skill_list: SkillList | None = Field(None, description="Skill list in the prompt; None = as trained.")
    constrain: bool = Field(True, description="Constrained decoding (llama.cpp, transformers): only valid calls "
                            "can come out.")
    merge: bool = Field(True, description="llama.cpp, bases under 1 GB: serve base and adapter merged into one Q8_0 "
                        "GGUF, built once into the user cache (the bundled base: about 10 s, 145 MB); a third faster "
                        "than applying the adapter live.")
    spans: bool = Field(True, description="Text arguments must be spans of the utterance (llama.cpp, transformers).")
    known_values: bool = Field(True, description="Where a skill says which values it can act on here "
                               "(``@skill(values=...)``; runapp: the installed apps), only those spans (llama.cpp, "
                               "transformers): \"turn on the coffee maker\" cannot open an app. ``skillcall eval`` "
                               "turns it off unless asked (its rows name apps this machine may lack).")  # fmt: skip
    max_tokens: int = Field(48, ge=4, description="Token bound on one call.")
    consult_margin: float = Field(4.0, ge=0, description="llama.cpp, a router trained with --members: the other "
                                  "members are asked about the skill when the router's likeliest first token leads "
                                  "the next by less than this many nats (about one utterance in nine with the "
                                  "shipped router); the skill is then the one their mean probability favours. 0 = "
                                  "never; a large value = always (each member costs an evaluation of the utterance).")
    draft_tokens: int = Field(12, ge=0, le=64, description="llama.cpp: tokens guessed ahead (the rest of a span) "
                              "and verified in one batch; 0 = one evaluation per generated token.")
    join_margin: float = Field(2.0, ge=0, description="llama.cpp: where another call may follow a whole one, how "
                               "much likelier (in logits) ending the calls there must be than going on with another, "
                               "for the router to end them (2: 0.80 -> 0.85 exact on the test split's compound rows, "
                               "nothing lost on single rows or SLURP); 0 = whichever the model favours.")
    threads: int | None = Field(None, ge=1, description="llama.cpp: CPU threads; None = one fewer than the cores "
                                "this process may use, at most 4, at least 1 (``default_threads``).")
    n_ctx: int = Field(1024, ge=128, description="llama.cpp context size.")
    base_url: str | None = Field(None, description="openai router: the endpoint's base URL.")
    model: str = Field("gpt-4o-mini", description="openai router: the model name.")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai router: variable holding the key.")
    timeout_s: float = Field(30.0, gt=0, description="openai router: request timeout.")


@dataclass(frozen=True)
class RouteResult:
    """One routing: the calls (one, or several requests said in one breath), what the model wrote, and where the
    time went."""

    text: str
    calls: CallSequence
    raw: str = ""
    seconds: float = 0.0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    forced_tokens: int = 0
    """Tokens appended without asking the model (the only possible continuation)."""
    drafted_tokens: int = 0
    """Generated tokens that were guessed by drafting and confirmed in a batch, saving an evaluation each."""
    evaluations: int = 0
    """llama.cpp evaluations (batches) this routing took."""
    consulted: int = 0
    """Other routers of the ensemble asked about the skill (``router.consult_margin``)."""
    reason: str | None = None
    """Why the call fell back to ``other()``, if it did."""
    dropped: int = 0
    """Requests said past the ``MAX_CALLS`` a sequence keeps (the router saw a fourth): not in ``calls``."""

    @property
    def call(self) -> SkillCall:
        """The first call (the only one, for one request)."""
        return self.calls[0]


@dataclass
class Router:
    """The interface: ``route(text) -> CallSequence`` (one call, or up to ``MAX_CALLS`` for requests said in one
    breath); ``route_result`` adds timings; ``route_batch`` many at once."""

    registry: Registry
    options: RouterOptions = field(default_factory=RouterOptions)
    card: RouterCard | None = None
    """How the router was trained; None for an untuned base."""
    name: str = "router"

    def route(self, text: str) -> CallSequence:
        return self.route_result(text).calls

    def route_batch(self, texts: list[str]) -> list[RouteResult]:
        return [self.route_result(text) for text in texts]

    def route_result(self, text: str) -> RouteResult:
        started = time.perf_counter()
        if not clean_utterance(text):
            return RouteResult(text, CallSequence([OTHER]), "", time.perf_counter() - started, reason="empty utterance")
        return self._route(text, started)

    def _route(self, text: str, started: float) -> RouteResult:
        raise NotImplementedError

    def _finish(self, text: str, raw: str, started: float, **counts: Any) -> RouteResult:
        """Validate what the model wrote; anything invalid becomes ``other()`` with the reason logged."""
        reason = counts.pop("reason", None)
        calls, dropped = CallSequence([OTHER]), 0
        raw = raw.replace(END, "")
        if reason is None:
            try:
                calls = self.registry.parse_calls(raw.strip(), limit=MAX_CALLS + 1)
            except CallError as exc:
                reason = f"invalid call {raw.strip()[:80]!r}: {exc}"
            dropped = max(0, len(calls) - MAX_CALLS)
            calls = CallSequence(calls[:MAX_CALLS])
        if reason:
            logger.warning("routing %r fell back to other(): %s", text[:80], reason)
        return RouteResult(text, calls, raw, time.perf_counter() - started, reason=reason, dropped=dropped, **counts)

    def _template(self):
        trained = self.card.template if self.card else None
        return load_template(self.options.template or trained or "chatml")  # untuned: chat turns

    def _skills_text(self) -> str:
        trained = self.card.skill_list if self.card else None
        return skills_text(self.registry, self.options.skill_list or trained or "none")


def read_card(router_dir: Path | None) -> RouterCard | None:
    """The trained router's card, or None for an untuned base. A broken card names the command that rebuilds it."""
    if router_dir is None:
        return None
    path = Path(router_dir) / ROUTER_CARD
    try:
        return load_card(router_dir)
    except FileNotFoundError:
        raise ModelError(f"no trained router at {router_dir} ({ROUTER_CARD} is missing); run `skillcall dataset && "
                         "skillcall train`, or set router.router_dir to none for the untuned base") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path} is unreadable ({exc}); rebuild it with `skillcall train`") from None


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
        self.llm = self._open(base, self._adapter(router_dir, self.card) if router_dir is not None else None)
        self.n_vocab = self.llm.n_vocab()
        self.pieces = [self.llm.detokenize([i]) for i in range(self.n_vocab)]
        self._sorted_pieces = sorted(set(self.pieces))
        self._by_piece: dict[bytes, list[int]] = {}
        for token, piece in enumerate(self.pieces):
            self._by_piece.setdefault(piece, []).append(token)
        template = self._template()
        self.template = template
        ends = {self.llm.token_eos(), *(t for stop in template.stop for t in self._tokens(stop, special=True)[:1])}
        for token in ends:  # where a sequence may go on or end, the model's end token is the grammar's END
            self.pieces[token] = END.encode()
        self.prefix_tokens = self._tokens(template.prefix(self._skills_text()), special=True)
        self.suffix_tokens = self._tokens(template.after, special=True)
        needed = len(self.prefix_tokens) + len(self.suffix_tokens) + self.options.max_tokens + 16  # 16: an utterance
        if needed > self.options.n_ctx:
            raise ModelError(f"the prompt ({len(self.prefix_tokens)} tokens) and a call ({self.options.max_tokens}) "
                             f"do not fit router.n_ctx = {self.options.n_ctx}; set it to {needed} or more "
                             "(1024 by default)")  # fmt: skip
        self.llm.reset()
        self.llm.eval(self.prefix_tokens)  # evaluated once; every routing starts from here
        self.members = []  # the ensemble's other routers (``skillcall train --members``), each with the prefix
        try:
            folders = self.card.member_folders() if self.card and self.options.consult_margin > 0 else []
        except ValueError as exc:
            raise ModelError(f"{Path(router_dir) / ROUTER_CARD}: {exc}; rebuild the router with `skillcall train`, "
                             "or set router.consult_margin = 0 to route with it alone") from None  # fmt: skip
        alone = f"or set router.consult_margin = 0 to route with {router_dir} alone"
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
            member.eval(self.prefix_tokens)
            self.members.append(member)

    def _adapter(self, router_dir: Path, card: RouterCard) -> Path:
        """A trained router's llama.cpp adapter file."""
        if not card.files.gguf:  # trained from a base llama.cpp cannot read
            raise ModelError(f"{router_dir} has no llama.cpp file (its base {card.base} is not a "
                             "llama-architecture GGUF); serve it with router.kind = \"transformers\"")  # fmt: skip
        adapter = Path(router_dir) / card.files.gguf
        if not adapter.is_file():
            raise ModelError(f"router adapter {adapter} is missing; rebuild it with `skillcall train`")
        return adapter

    def _open(self, base: Path, adapter: Path | None) -> Any:
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
            return self._llama_cpp.Llama(
                model_path=str(model), lora_path=str(adapter) if adapter else None, n_ctx=self.options.n_ctx,
                n_batch=256, n_threads=threads, n_threads_batch=threads, verbose=False,
            )  # fmt: skip
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp cannot load {adapter or model} ({exc}); delete it if it is a cached merged "
                             "router, or rebuild the router with `skillcall train`") from None  # fmt: skip

    def _tokens(self, text: str, special: bool) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def _logits(self, index: int = -1, llm: Any = None):
        pointer = self._llama_cpp.llama_get_logits_ith((self.llm if llm is None else llm)._ctx.ctx, index)
        return self._np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def _decode(self, pending: list[int], draft: list[int]) -> list[Any]:
        """Evaluate ``pending + draft`` in one batch after what is cached; the logits after the last pending token
        and after each draft token (``llm.eval`` keeps only the last, so this fills the batch itself)."""
        llm, tokens = self.llm, pending + draft
        llm._ctx.kv_cache_seq_rm(-1, llm.n_tokens, -1)
        llm._batch.set_batch(batch=tokens, n_past=llm.n_tokens, logits_all=False)
        first = len(pending) - 1
        for i in range(first, len(tokens)):
            llm._batch.batch.logits[i] = True
        llm._ctx.decode(llm._batch)
        llm.input_ids[llm.n_tokens : llm.n_tokens + len(tokens)] = tokens
        llm.n_tokens += len(tokens)
        return [self._logits(i) for i in range(first, len(tokens))]

    def _draft(self, raw: bytes, acceptor: CallAcceptor, room: int) -> list[int]:
        """A guess at the next tokens (at most ``room``), checked by the model in the same batch as the pending
        ones: the grammar's forced text, an argument rather than ``)`` at each choice of fixed strings, and for a
        span the rest of the utterance (prompt-lookup drafting) from the value so far, or, before it begins, from
        after the last word that usually precedes it in the training rows (the card's ``span_starts``). Only
        tokens the model picks itself are kept, so the call is the one token-by-token decoding writes (up to
        float rounding on near-ties: batched and single-token kernels round differently). On a CPU an extra
        token in a batch costs about a third of an evaluation of its own."""
        so_far = _utf8_prefix(raw)
        if so_far is None or room <= 0:
            return []
        guess = self._guess(so_far, acceptor)
        return self._tokens(guess, special=False)[:room] if guess else []

    def _guess(self, so_far: str, acceptor: CallAcceptor) -> str:
        """The likeliest rest of the call after ``so_far`` (see ``_draft``)."""
        guess = acceptor.forced(so_far)
        for _ in range(4):
            status, options = acceptor.state(so_far + guess)
            if status != PARTIAL or not options or END in options:  # a call is whole: the model says if more follow
                break
            choice = next((option for option in options if option != ")"), options[0])
            guess += choice + acceptor.forced(so_far + guess + choice)
        return guess + acceptor.span_rest(so_far + guess, self.card.span_starts if self.card else None)

    def _first_draft(self, utterance: str, acceptor: CallAcceptor, room: int) -> list[int]:
        """A whole call guessed before the model has read the utterance, for the utterance's own batch: the skill
        the words point to (the card's ``skill_words``), when it takes arguments (a call without any is done
        after one evaluation anyway), then ``_guess``. Right, it saves a second evaluation."""
        skill = likely_skill(utterance, self.card.skill_words if self.card else {}) if room > 0 else None
        if skill not in self.registry or not self.registry.get(skill).parameters:
            return []
        return self._tokens(skill + self._guess(skill, acceptor), special=False)[:room]

    def _needed(self, raw: bytes, draft: list[int], acceptor: CallAcceptor) -> int:
        """How many draft tokens to evaluate: all up to the one that completes the call (with its forced rest).
        That one is only checked against the logits before it; the logits after it are never read."""
        for count, token in enumerate(draft):
            raw += self.pieces[token]
            text = _utf8_prefix(raw)
            if text is not None and acceptor.state(text + acceptor.forced(text))[0] == COMPLETE:
                return count
        return len(draft)

    def _route(self, text: str, started: float) -> RouteResult:
        utterance = clean_utterance(text)
        tokens = self._tokens(utterance, special=False) + self.suffix_tokens
        room = self.options.n_ctx - len(self.prefix_tokens) - self.options.max_tokens
        tokens = tokens[-room:] if len(tokens) > room else tokens
        self.llm.n_tokens = len(self.prefix_tokens)  # drop the last utterance; keep the evaluated prefix
        if not self.options.constrain:
            self.llm.eval(tokens)
            return self._route_free(text, tokens, started)
        acceptor = CallAcceptor(self.registry, utterance, spans=self.options.spans,
                                known_values=self.options.known_values)
        draft = self._first_draft(utterance, acceptor, min(self.options.draft_tokens, self.options.max_tokens))
        pending = tokens
        if len(tokens) + len(draft) > self.llm.n_batch:  # a long utterance: all but its last token first
            self.llm.eval(tokens[:-1])
            pending = tokens[-1:]
        evaluated = self._needed(b"", draft, acceptor)
        rows = self._decode(pending, draft[:evaluated])  # rows[k]: the logits after the cache before the draft + draft[:k]
        rows[0], consulted = self._consult(rows[0], tokens)
        generated: list[int] = []
        raw, forced_count, drafted, evaluations, reason, done = b"", 0, 0, 1, None, False
        while True:
            kept = 0  # draft tokens the model confirmed
            while True:
                if len(generated) >= self.options.max_tokens:
                    reason = f"no complete call within {self.options.max_tokens} tokens"
                    break
                token = self._pick(raw, acceptor, rows[kept])
                if token is None:
                    reason = "no token continues a valid call"
                    break
                hit = kept < len(draft) and token == draft[kept]
                drafted += hit
                generated.append(token)
                raw += self.pieces[token]
                so_far = _utf8_prefix(raw)
                if so_far is None or acceptor.state(so_far)[0] == COMPLETE:
                    done = True  # stop at the closing parenthesis: no end token needed
                    break
                forced = acceptor.forced(so_far)
                if forced and acceptor.state(so_far + forced)[0] == COMPLETE:
                    raw += forced.encode()
                    done = True
                    break
                extra = self._force(generated, so_far + forced, acceptor) if forced else []
                if hit:
                    kept += 1
                    if extra and draft[kept : kept + len(extra)] == extra:
                        kept += len(extra)  # the forced tokens were drafted too: cached already
                        generated += extra
                        raw += b"".join(self.pieces[t] for t in extra)
                        forced_count += len(extra)
                        extra = []
                    if not extra:
                        continue  # the next row follows the confirmed tokens
                    pending = extra
                else:
                    pending = [token] + extra
                break
            if done or reason:
                break
            self.llm.n_tokens -= evaluated - kept  # forget the draft tokens the model did not confirm
            generated += extra  # forced: appended without sampling, evaluated in the next batch
            raw += b"".join(self.pieces[t] for t in extra)
            forced_count += len(extra)
            room = self.options.max_tokens - len(generated)  # the token bound keeps the cache within n_ctx
            if room < 0:
                reason = f"no complete call within {self.options.max_tokens} tokens"
                break
            draft = self._draft(raw, acceptor, min(room, self.options.draft_tokens))
            evaluated = self._needed(raw, draft, acceptor)
            rows = self._decode(pending, draft[:evaluated])
            evaluations += 1
        return self._finish(text, raw.decode("utf-8", "replace"), started, prompt_tokens=len(tokens),
                            generated_tokens=len(generated) - forced_count, forced_tokens=forced_count,
                            drafted_tokens=drafted, evaluations=evaluations, consulted=consulted,
                            reason=reason)  # fmt: skip

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
            member.n_tokens = len(self.prefix_tokens)
            member.eval(tokens)
            probabilities += _softmax(np, self._logits(llm=member))
        return np.log(probabilities / (1 + len(self.members))), len(self.members)

    def _route_free(self, text: str, tokens: list[int], started: float) -> RouteResult:
        """Unconstrained greedy decoding (``constrain = false``): up to a stop string or the token bound."""
        stops = [s.encode() for s in self.template.stop]
        generated, raw, reason = [], b"", None
        first, consulted = self._consult(self._logits(), tokens)
        while True:
            token = int((first if not generated else self._logits()).argmax())
            if token == self.llm.token_eos():
                break
            generated.append(token)
            raw += self.pieces[token]
            if any(stop in raw for stop in stops):
                break
            if len(generated) >= self.options.max_tokens:
                reason = f"no complete call within {self.options.max_tokens} tokens"
                break
            self.llm.eval([token])
        for stop in stops:
            raw = raw.split(stop)[0]
        return self._finish(text, raw.decode("utf-8", "replace"), started, prompt_tokens=len(tokens),
                            generated_tokens=len(generated), evaluations=len(generated), consulted=consulted,
                            reason=reason)  # fmt: skip

    def _force(self, generated: list[int], target: str, acceptor: CallAcceptor) -> list[int]:
        """Tokens for the forced text, as the tokenizer writes ``target`` (how the router was trained), when that
        extends what was generated. The last one is held back when a longer token could merge it with what
        follows (``"`` + ``,`` is one token, ``",``) and the grammar accepts that: then the model chooses."""
        canonical = self._tokens(target, special=False)
        if canonical[: len(generated)] != generated or len(canonical) == len(generated):
            return []
        extra = canonical[len(generated) :]
        last = self.pieces[extra[-1]]
        head = target.encode()[: len(target.encode()) - len(last)]
        start = bisect.bisect_right(self._sorted_pieces, last)
        while start < len(self._sorted_pieces) and self._sorted_pieces[start].startswith(last):
            text = _utf8_prefix(head + self._sorted_pieces[start])
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
            text = _utf8_prefix(raw + piece) if piece else None
            if text is None:
                return False
            tail = (raw + piece)[len(text.encode()) :]  # the start of a character split across tokens
            return acceptor.continues(text, tail) if tail else acceptor.state(text)[0] != NO

        def ends(token: int) -> bool:  # the calls would be whole with it, and could stop there
            text = _utf8_prefix(raw + self.pieces[token])
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
        so_far = _utf8_prefix(raw)
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


def _utf8_prefix(data: bytes) -> str | None:
    """The text of ``data``, less an incomplete character at its very end (byte-level tokens split characters);
    None when the bytes are not UTF-8 at all."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.end == len(data):
            return data[: exc.start].decode("utf-8", errors="strict")
        return None


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
        from finetune.train import encode_row

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


@dataclass
class OpenAIRouter(Router):
    """Function calling: one tool per skill from the registry's JSON schemas; the model must call one."""

    name: str = "openai"

    def __post_init__(self) -> None:
        import openai

        self._openai = openai
        key = os.environ.get(self.options.api_key_env)
        if not key and not self.options.base_url:
            raise ModelError(f"the openai router needs ${self.options.api_key_env} or router.base_url")
        self.client = openai.OpenAI(base_url=self.options.base_url, api_key=key or "not-needed",
                                    timeout=self.options.timeout_s, max_retries=2)  # fmt: skip
        self.tools = [s.tool() for s in self.registry]
        self.system = ("You route a voice assistant's transcribed words to a tool: one tool call per request, up to "
                       f"{MAX_CALLS} requests in the order said. Copy text arguments from the words as said. Call "
                       "other when the words are not a request for any tool.")  # fmt: skip

    def _route(self, text: str, started: float) -> RouteResult:
        try:
            response = self.client.chat.completions.create(
                model=self.options.model, tools=self.tools, tool_choice="required", temperature=0,
                messages=[{"role": "system", "content": self.system}, {"role": "user", "content": clean_utterance(text)}],
            )  # fmt: skip
        except self._openai.OpenAIError as exc:
            return self._finish(text, "", started, reason=f"endpoint failed: {type(exc).__name__}: {exc}")
        message = response.choices[0].message if response.choices else None
        calls = (message.tool_calls or []) if message else []
        if not calls:
            return self._finish(text, (message.content or "") if message else "", started, reason="no tool call")
        written = []
        for tool_call in calls[: MAX_CALLS + 1]:  # several requests in one breath: a tool call each, in order
            function = tool_call.function
            try:
                arguments = json.loads(function.arguments or "{}")
                if not isinstance(arguments, dict):
                    raise ValueError("arguments are not an object")
                written.append(str(self.registry.validate(function.name, arguments)))
            except (ValueError, CallError) as exc:
                return self._finish(text, f"{function.name}({function.arguments})", started, reason=str(exc))
        requests = [call for call in written if call != str(OTHER)] or written[:1]  # other() is no request
        return self._finish(text, SEPARATOR.join(requests), started)


ROUTERS: dict[str, type[Router]] = {"llama.cpp": LlamaCppRouter, "transformers": TransformersRouter,
                                    "openai": OpenAIRouter}  # fmt: skip


def retrain_command(router_dir: Path | None, card: RouterCard | None, init: bool = True) -> str:
    """The command that retrains the router in ``router_dir`` (its whole ensemble), from itself with ``init``."""
    command = "skillcall dataset && skillcall train"
    command += f" --init {router_dir}" if init else ""
    command += "" if router_dir == ROUTER_DIR else f" --out {router_dir}"  # train writes router/ by default
    try:
        members = 1 + len(card.member_folders() if card else [])
    except ValueError:
        members = 1
    return f"`{command}{f' --members {members}' if members > 1 else ''}`"


def default_threads() -> int:
    """The router's threads when ``router.threads`` is unset: one fewer than the cores this process may run on, at
    most 4, at least 1. llama.cpp's threads meet at a barrier after every layer, so with one on every core a single
    other busy program stalls each token; leaving a core free keeps routing steady on a desktop that is never idle
    (on the 2-vCPU EPYC, beside one spinning process: 1 thread, p50 1.2x its idle figure; 2 threads, 3.5x — see
    docs/benchmarks.md, `bench/router_bench.py --busy`). Beyond 4, a 135M model's tokens get no faster."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(4, cores - 1))


def load_router(options: RouterOptions, registry: Registry, examples_fingerprint: str | None = None) -> Router:
    """The front door: build the configured router once (load it, evaluate its prompt prefix) and keep it.

    With ``examples_fingerprint``, warns when the example files changed since the router was trained.
    """
    card = read_card(options.router_dir) if options.kind != "openai" else None
    retrain = f"{retrain_command(options.router_dir, card)} (minutes: from this router)"
    if card and card.examples_changed(examples_fingerprint):
        logger.warning("the example files changed since this router was trained; retrain it with %s", retrain)
    missing = card.unlearnt_skills(list(registry.names)) if card else []
    if missing:
        added = f"skill {missing[0]} was" if len(missing) == 1 else f"skills {', '.join(missing)} were"
        logger.warning("%s added after the router was trained; it has not learnt %s: retrain with %s", added,
                       "it" if len(missing) == 1 else "them", retrain)  # fmt: skip
    return ROUTERS[options.kind](registry, options, card)
