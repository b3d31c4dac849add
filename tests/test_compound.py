"""Compound rows: several requests in one breath, composed from a split's own rows."""

from __future__ import annotations

from finetune.compound import compose
from finetune.examples import load_examples
from skills import span_positions
from tests.test_examples import EXAMPLES_DIR


def _rows(registry):
    return [{"text": e.text, "call": e.call, "skill": skill}
            for skill, e in load_examples([EXAMPLES_DIR], registry).rows()]  # fmt: skip


def test_compound_rows_are_requests_in_the_order_said_with_spans_of_the_whole(registry):
    rows = _rows(registry)
    made = compose(rows, 0.05, 0, "train", registry)
    assert made == compose(rows, 0.05, 0, "train", registry)  # deterministic
    assert made != compose(rows, 0.05, 0, "test", registry)  # each split its own
    assert abs(len(made) - 0.05 * len(rows)) <= 3
    texts = {r["text"] for r in rows}
    several = 0
    for row in made:
        assert row["skill"] == "compound" and row["text"] not in texts
        calls = registry.parse_calls(row["call"])  # up to three, valid
        several += len(calls) > 1
        assert "other" not in [c.name for c in calls]
        assert len({c.name for c in calls}) == len(calls)  # requests of different skills
        at = 0
        for call in calls:  # every span the words said, each call's after the one before
            spans = [v for p in registry.get(call.name).parameters if p.span
                     for v in [call.arguments.get(p.name)] if isinstance(v, str)]  # fmt: skip
            for value in spans:
                assert span_positions(row["text"], value), (row, value)
            starts = [s for value in spans for s in span_positions(row["text"], value)]
            if starts:
                assert max(starts) >= at, row
                at = min(s for s in starts if s >= at)
    assert 0.7 * len(made) < several < len(made)  # the rest: a request and a remark, the request kept alone


def test_only_training_hears_a_fourth_request(registry):
    rows = _rows(registry)
    assert any(len(registry.parse_calls(r["call"], limit=4)) == 4 for r in compose(rows, 0.1, 0, "train", registry,
                                                                                     four=0.05))  # fmt: skip
    assert all(len(registry.parse_calls(r["call"])) <= 3 for r in compose(rows, 0.1, 0, "test", registry))


def test_too_few_skills_make_no_compound(registry):
    rows = [r for r in _rows(registry) if r["skill"] in ("weather", "other")]
    assert compose(rows, 0.1, 0, "train", registry) == []
    assert compose(_rows(registry), 0.0, 0, "train", registry) == []
