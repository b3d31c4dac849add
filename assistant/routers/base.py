"""The interface every router has (``Router``, ``RouteResult``), and the trained router folder it is served from.

Anything a model writes that does not validate becomes ``other()`` with a logged reason, never an exception.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune.base import ModelError
from finetune.card import ROUTER_CARD, ROUTER_DIR, RouterCard, load_card
from finetune.prompts import clean_utterance, load_template, skills_text
from skills import MAX_CALLS, CallError, CallSequence, Registry, SkillCall

from ..constrain import END
from .options import RouterOptions

logger = logging.getLogger(__name__)
OTHER = SkillCall("other")


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
