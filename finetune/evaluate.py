"""Evaluation of any object with a ``route(text)`` method (a call, or a sequence of calls) on ``{"text", "call"}``
rows, whose calls may be sequences (``a(); b()``): compared whole, and reported for single and compound rows
apart."""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from skills import MAX_CALLS, CallError, CallSequence, Registry, SkillCall, sequences_equal


class Routes(Protocol):
    def route(self, text: str) -> SkillCall | tuple[SkillCall, ...]: ...


@dataclass
class Miss:
    text: str
    expected: str
    got: str


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a share ``successes / n`` (95 % for z = 1.96): how far the accuracy on these
    rows may sit from the accuracy on more rows like them. On 384 rows, 0.958 reads as 0.933–0.974."""
    if not n:
        return 0.0, 0.0
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class EvalReport:
    """Exact-call, skill-name and argument accuracy, per skill, a confusion table and latency."""

    rows: int = 0
    exact: int = 0
    skill_right: int = 0
    arguments_right: int = 0
    latencies: list[float] = field(default_factory=list)
    per_skill: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    confusion: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    misses: list[Miss] = field(default_factory=list)
    compound: Counter = field(default_factory=Counter)
    """Rows whose call is a sequence of several: "rows", "exact", "skill" (the right skills in order)."""
    split: int = 0
    """Single-call rows routed to several calls (one request taken for two)."""

    @property
    def exact_accuracy(self) -> float:
        return self.exact / self.rows if self.rows else 0.0

    @property
    def skill_accuracy(self) -> float:
        return self.skill_right / self.rows if self.rows else 0.0

    @property
    def argument_accuracy(self) -> float:
        """Of the rows routed to the right skill, the share whose arguments are right too."""
        return self.arguments_right / self.skill_right if self.skill_right else 0.0

    @property
    def exact_interval(self) -> tuple[float, float]:
        """The 95 % Wilson interval of the exact-call accuracy."""
        return wilson_interval(self.exact, self.rows)

    def latency(self, q: float) -> float:
        return percentile(self.latencies, q)

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "exact_accuracy": round(self.exact_accuracy, 4),
            "exact_accuracy_95": [round(bound, 4) for bound in self.exact_interval],
            "skill_accuracy": round(self.skill_accuracy, 4), "argument_accuracy": round(self.argument_accuracy, 4),
            "latency_p50_ms": round(1000 * self.latency(0.5), 1), "latency_p95_ms": round(1000 * self.latency(0.95), 1),
            "latency_mean_ms": round(1000 * statistics.fmean(self.latencies), 1) if self.latencies else 0.0,
            "per_skill": {skill: {"rows": c["rows"], "exact": c["exact"], "skill": c["skill"]}
                          for skill, c in sorted(self.per_skill.items())},
            "single": self.single_summary(),
            "compound": {"rows": self.compound["rows"], "exact": self.compound["exact"],
                         "skill": self.compound["skill"]},
        }  # fmt: skip

    def single_summary(self) -> dict[str, Any]:
        """The rows of one call: how many, routed exactly, and how many were split into several calls."""
        rows = self.rows - self.compound["rows"]
        return {"rows": rows, "exact": self.exact - self.compound["exact"], "split": self.split}


def evaluate(router: Routes, rows: list[dict], registry: Registry) -> EvalReport:
    """The front door: route every row's text, compare with its call (DESIGN's equality), time each routing."""
    report = EvalReport()
    expected_calls = []
    for number, row in enumerate(rows, 1):  # every call checked before any routing: a bad row costs no wait
        try:
            expected_calls.append(registry.parse_calls(row["call"]))
        except CallError as exc:
            raise CallError(f"evaluation row {number} ({row['text']!r}) has an invalid call: {exc}") from None
    for row, expected in zip(rows, expected_calls, strict=True):
        started = time.perf_counter()
        routed = router.route(row["text"])
        report.latencies.append(time.perf_counter() - started)
        got = CallSequence([routed] if isinstance(routed, SkillCall) else routed[:MAX_CALLS])
        report.rows += 1
        same_skills = [c.name for c in got] == [c.name for c in expected]
        exact = sequences_equal(got, expected)
        if len(expected) > 1:  # compound rows: the sequence whole, apart from the per-skill table
            report.compound.update(rows=1, exact=exact, skill=same_skills)
        else:
            stats = report.per_skill[expected[0].name]
            stats["rows"] += 1
            report.confusion[expected[0].name]["+".join(c.name for c in got)] += 1
            report.split += len(got) > 1
            stats["skill"] += same_skills
            stats["exact"] += exact
        report.skill_right += same_skills
        report.exact += exact
        report.arguments_right += exact and same_skills
        if not exact:
            report.misses.append(Miss(row["text"], str(expected), str(got)))
    return report


def plot_confusion(report: EvalReport, path: Path, title: str = "") -> Path:
    """The expected-skill x routed-skill table as a PNG heat map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = sorted(set(report.confusion) | {g for c in report.confusion.values() for g in c})
    table = np.array([[report.confusion[e][g] for g in labels] for e in labels], dtype=float)
    figure, axis = plt.subplots(figsize=(1 + 0.6 * len(labels), 1 + 0.55 * len(labels)), dpi=100)
    axis.imshow(table / np.maximum(table.sum(axis=1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("routed to")
    axis.set_ylabel("expected")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if table[i, j]:
                axis.text(j, i, int(table[i, j]), ha="center", va="center", fontsize=8,
                          color="white" if table[i, j] > table[i].sum() / 2 else "black")  # fmt: skip
    axis.set_title(title or f"exact {report.exact_accuracy:.1%}, skill {report.skill_accuracy:.1%}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
