"""Statistics of the training rows that a router drafts from (recorded in the router card by ``skillcall train``).

A llama.cpp router guesses the call ahead and has the model check the guess in one batch: which skill the words
point to before the model has read them (``skill_words`` / ``likely_skill``) and where a span starts
(``span_starts``). Guesses only save time; the model's own choices decide the call.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from skills import Registry, SkillcallError, span_positions


def words(text: str) -> set[str]:
    """The distinct words of an utterance, case-folded."""
    return set(re.findall(r"[\w']+", text.casefold()))


def span_starts(rows: list[dict], registry: Registry, keep: int = 6) -> dict[str, list[str]]:
    """For each span parameter ("skill.param"), the words that most often come right before its value in the
    rows, most frequent first ("" = the value starts the utterance). A router drafts where a span probably
    starts from them."""
    counts: dict[str, Counter[str]] = {}
    for row in rows:
        try:
            call = registry.parse(row["call"])
        except SkillcallError:
            continue
        spans = {p.name for p in registry.get(call.name).parameters if p.span}
        for name, value in call.arguments.items():
            found = span_positions(row["text"], value) if name in spans and isinstance(value, str) else []
            if found:
                at = found[0]
                before = [w for w in (w.strip(",.:;!?\"'…-").lower() for w in row["text"][:at].split()) if w]
                counts.setdefault(f"{call.name}.{name}", Counter())[before[-1] if before else ""] += 1
    return {key: [word for word, _ in counter.most_common(keep)] for key, counter in sorted(counts.items())}


def skill_words(rows: list[dict], min_rows: int = 3) -> dict[str, dict]:
    """How many rows each skill has, and for each word said in at least ``min_rows`` rows, in how many rows of
    each skill: a naive Bayes model of the skill given the words (``likely_skill``). A row of several calls counts
    for its first call's skill, and its words for none."""
    per_skill: Counter[str] = Counter()
    counts: dict[str, Counter[str]] = {}
    for row in rows:
        skill = row["call"].split("(", 1)[0]
        per_skill[skill] += 1
        if row.get("skill") == "compound":  # the words of several requests point to no one skill
            continue
        for word in words(row["text"]):
            counts.setdefault(word, Counter())[skill] += 1
    kept = {word: dict(sorted(c.items())) for word, c in sorted(counts.items()) if c.total() >= min_rows}
    return {"rows": dict(sorted(per_skill.items())), "words": kept}


def likely_skill(text: str, stats: dict, confidence: float = 0.8) -> str | None:
    """The skill the words point to when its naive Bayes probability reaches ``confidence``, else None."""
    per_skill, counts = stats.get("rows") or {}, stats.get("words") or {}
    said = [counts[word] for word in words(text) if word in counts]
    if not per_skill or not said:
        return None
    scores = {skill: math.log(n) + sum(math.log((c.get(skill, 0) + 0.5) / (n + 1)) for c in said)
              for skill, n in per_skill.items()}  # fmt: skip
    best = max(scores, key=scores.__getitem__)
    total = sum(math.exp(score - scores[best]) for score in scores.values())
    return best if 1 / total >= confidence else None
