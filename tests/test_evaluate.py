"""evaluate() on any object with a route() method."""

from __future__ import annotations

import pytest

from finetune.evaluate import evaluate, plot_confusion, wilson_interval
from skills import CallError, SkillCall

ROWS = [
    {"text": "weather in Oslo", "call": 'weather(location="Oslo")'},
    {"text": "weather in Rome", "call": 'weather(location="Rome")'},
    {"text": "time in Lima", "call": 'timecheck(location="Lima")'},
    {"text": "thanks", "call": "other()"},
]


class TableRouter:
    """A router that answers from a table: enough to check the arithmetic of the report."""

    def __init__(self, answers):
        self.answers = answers

    def route(self, text):
        return self.answers[text]


def test_report_counts_exact_skill_and_argument_accuracy(registry, tmp_path):
    router = TableRouter({
        "weather in Oslo": SkillCall("weather", {"location": "oslo."}),  # equal after case and punctuation
        "weather in Rome": SkillCall("weather", {"location": "Milan"}),  # right skill, wrong argument
        "time in Lima": SkillCall("weather", {"location": "Lima"}),  # wrong skill
        "thanks": SkillCall("other"),
    })  # fmt: skip
    report = evaluate(router, ROWS, registry)
    assert (report.rows, report.exact, report.skill_right, report.arguments_right) == (4, 2, 3, 2)
    assert report.exact_accuracy == 0.5 and report.skill_accuracy == 0.75
    assert report.argument_accuracy == pytest.approx(2 / 3)
    assert report.confusion["timecheck"]["weather"] == 1
    assert [m.text for m in report.misses] == ["weather in Rome", "time in Lima"]
    summary = report.summary()
    assert summary["per_skill"]["weather"] == {"rows": 2, "exact": 1, "skill": 2}
    assert summary["latency_p50_ms"] >= 0
    assert summary["exact_accuracy_95"] == [round(bound, 4) for bound in wilson_interval(2, 4)]
    png = plot_confusion(report, tmp_path / "c.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_an_invalid_expected_call_is_named_before_any_routing(registry):
    rows = [{"text": "time in Oslo", "call": 'timecheck(location="Oslo")'}, {"text": "x", "call": "wether()"}]
    with pytest.raises(CallError, match=r"evaluation row 2 \('x'\) has an invalid call"):
        evaluate(TableRouter({}), rows, registry)  # an empty table: routing row 1 would raise KeyError


def test_the_accuracy_interval_is_wilsons():
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))  # published values
    assert wilson_interval(10, 10) == (pytest.approx(0.7225, abs=1e-4), 1.0)
    low, high = wilson_interval(368, 384)
    assert (round(low, 3), round(high, 3)) == (0.933, 0.974) and low < 368 / 384 < high
    wide, narrow = wilson_interval(48, 50), wilson_interval(960, 1000)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]  # more rows, a tighter interval
    assert wilson_interval(0, 0) == (0.0, 0.0)


def test_sequences_are_compared_whole_and_reported_apart_from_single_rows(registry):
    timer, paris = SkillCall("timer", {"duration": "ten minutes"}), SkillCall("weather", {"location": "Paris"})
    rows = [*ROWS[:2], {"text": "a timer and Paris", "call": f"{timer}; {paris}"},
            {"text": "Paris and a timer", "call": f"{paris}; {timer}"},
            {"text": "bread and milk", "call": 'notes(action="add", note="bread and milk")'}]  # fmt: skip
    router = TableRouter({
        "weather in Oslo": SkillCall("weather", {"location": "Oslo"}),
        "weather in Rome": (SkillCall("weather", {"location": "Rome"}), timer),  # one request taken for two
        "a timer and Paris": (timer, SkillCall("weather", {"location": "paris"})),  # equal call by call
        "Paris and a timer": (timer, paris),  # the right calls in the wrong order
        "bread and milk": SkillCall("notes", {"action": "add", "note": "bread and milk"}),
    })  # fmt: skip
    report = evaluate(router, rows, registry)
    assert (report.rows, report.exact, report.skill_right) == (5, 3, 3)
    assert report.single_summary() == {"rows": 3, "exact": 2, "split": 1}
    assert dict(report.compound) == {"rows": 2, "exact": 1, "skill": 1}
    assert report.confusion["weather"]["weather+timer"] == 1
    assert report.summary()["compound"] == {"rows": 2, "exact": 1, "skill": 1}
    assert [m.got for m in report.misses] == [f'weather(location="Rome"); {timer}', f"{timer}; {paris}"]
