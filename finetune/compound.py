"""Compound rows: several requests said in one breath, composed from a split's own rows.

"Set a timer for ten minutes and what's the weather in Paris?" ->
``timer(duration="ten minutes"); weather(location="Paris")``. Each split composes only from its own rows, so no
test row's words reach training. A share of the compositions join a request with a remark that is no request
("..., and I'm so tired today"): the sequence keeps the request alone (DESIGN: a part that is not a command is
dropped). The training split also gets a few with four requests, so the router learns to tell a fourth was said
(a sequence keeps three).
"""

from __future__ import annotations

import random
import re

from skills import MAX_CALLS, SEPARATOR, Registry, SkillcallError, span_positions

from .augment import ASSISTANT_NAMES, FILLERS

JOINS = (" and ", " and then ", ", then ", " then ", ", and ", " and also ", " also ", ", after that ", " plus ")
"""What people say between two requests (lower-case connectors; ". " joins sentences as Whisper writes them)."""
LONGEST_PART = 14
"""Words in a row that may be part of a compound: longer requests are rarely said back to back."""
_ADDRESSED = re.compile(r"(?i)^\W*(hey|ok|okay|yo|hi|hello|excuse me|" + "|".join(
    re.escape(w) for w in (*ASSISTANT_NAMES, *FILLERS)) + r")\b")  # fmt: skip
_NAMED = re.compile(r"(?i)\b(otto|" + "|".join(re.escape(w) for w in ASSISTANT_NAMES) + r")\W*$")
"""A part said to the assistant by name at its end ("..., Otto?"): only the whole compound may end so."""


def compose(rows: list[dict], share: float, seed: int, split: str, registry: Registry, *,
            four: float = 0.0) -> list[dict]:  # fmt: skip
    """``share * len(rows)`` compound rows made from ``rows`` (``{"text", "call", "skill"}``), deterministic for
    ``seed`` and ``split``: two requests of different skills (three a fifth of the time; four with probability
    ``four``), joined in the order said, or, a sixth of the time, a request and a remark (the request's call
    alone). Rows of a compound have ``"skill": "compound"``."""
    wanted = round(share * len(rows))
    requests = [r for r in rows if r["skill"] != "other" and len(r["text"].split()) <= LONGEST_PART]
    remarks = [r for r in rows if r["skill"] == "other" and len(r["text"].split()) <= 10 and "," not in r["text"]]
    if not wanted or len({r["skill"] for r in requests}) < 2:
        return []
    rng = random.Random(f"{seed}:compound:{split}")
    made: dict[str, dict] = {}
    for _ in range(20 * wanted):
        if len(made) >= wanted:
            break
        if remarks and rng.random() < 1 / 6:
            request, remark = rng.choice(requests), rng.choice(remarks)
            parts, kept = ([request, remark], [0]) if rng.random() < 0.7 else ([remark, request], [1])
        else:
            count = 4 if rng.random() < four else 3 if rng.random() < 0.2 else 2
            parts = []
            for row in rng.sample(requests, min(len(requests), 4 * count)):
                if row["skill"] not in {p["skill"] for p in parts}:
                    parts.append(row)
                if len(parts) == count:
                    break
            kept = list(range(len(parts)))
        if len(parts) < 2 or any(_ADDRESSED.match(p["text"]) for p in parts[1:]) or any(
                _NAMED.search(p["text"]) for p in parts[:-1]):  # fmt: skip
            continue
        row = _joined(parts, kept, rng, registry)
        if row is not None and row["text"].casefold() not in made:
            made[row["text"].casefold()] = row
    return list(made.values())


def _joined(parts: list[dict], kept: list[int], rng: random.Random, registry: Registry) -> dict | None:
    """The parts said one after another, and the calls of the ``kept`` ones in order; None when a part's call
    cannot be rewritten to the words as joined."""
    plain = parts[0]["text"] == parts[0]["text"].lower()
    sentences = not plain and rng.random() < 0.2  # "Set a timer for ten minutes. What's the weather in Paris?"
    texts: list[str] = []
    calls: list[str] = []
    for index, part in enumerate(parts):
        text, call = part["text"].strip(), part["call"]
        if index and not sentences and text[:1].isupper() and not re.match(r"I\b", text):
            text, call = _lowered(text, call, registry)
            if call is None:
                return None
        if index < len(parts) - 1 and not sentences:
            text = text.rstrip(".!?")
        elif index < len(parts) - 1 and text[-1:] not in ".!?":
            text += "."
        texts.append(text)
        if index in kept:
            calls.append(call)
    said = texts[0]
    for text in texts[1:]:
        said += " " + text if sentences else rng.choice(JOINS).replace(",", "" if plain else ",") + text
    said = " ".join(said.split())
    for call in calls:  # every span still a span of the whole
        try:
            for one in registry.parse_calls(call):
                spans = [one.arguments[p.name] for p in registry.get(one.name).parameters
                         if p.span and isinstance(one.arguments.get(p.name), str)]  # fmt: skip
                if not all(span_positions(said, value) for value in spans):
                    return None
        except SkillcallError:
            return None
    if len(calls) > MAX_CALLS + 1:
        return None
    return {"text": said, "call": SEPARATOR.join(calls), "skill": "compound"}


def _lowered(text: str, call: str, registry: Registry) -> tuple[str, str | None]:
    """A later part's first letter lowered ("... and what's the weather"), and the span that begins with it."""
    lowered = text[:1].lower() + text[1:]
    try:
        parsed = registry.parse(call)
    except SkillcallError:
        return text, None
    arguments = {k: (v[:1].lower() + v[1:] if isinstance(v, str) and text.startswith(v) else v)
                 for k, v in parsed.arguments.items()}  # fmt: skip
    try:
        return lowered, str(registry.validate(parsed.name, arguments))
    except SkillcallError:
        return text, None
