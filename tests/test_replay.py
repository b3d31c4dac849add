"""Replay: what a retrain from a router trains on."""

from finetune.replay import (
    CORRECTION_WEIGHT,
    learnt_keys,
    read_learnt,
    replayed,
    replayed_size,
    row_key,
    unlearnt,
    write_learnt,
)


def _rows(n: int, skill: str = "weather") -> list[dict]:
    return [{"text": f"weather in town {i}", "call": f'weather(location="town {i}")', "skill": skill} for i in range(n)]


def test_a_rows_key_ignores_case_and_punctuation_but_not_the_call():
    row = {"text": "What's the weather?", "call": "weather()"}
    assert row_key(row) == row_key({"text": "whats the  weather", "call": "weather()"})
    assert row_key(row) != row_key({"text": "What's the weather?", "call": "other()"})
    assert len(row_key(row)) == 12


def test_the_learnt_list_round_trips_and_a_folder_without_one_has_none(tmp_path):
    rows = _rows(5) + [{"text": "weather in town 1 and the time", "call": 'weather(location="town 1"); timecheck()',
                        "skill": "compound"}]  # fmt: skip
    keys = learnt_keys(rows)
    assert len(keys) == 5  # rows of several requests are composed afresh by each `dataset`: never listed
    write_learnt(tmp_path, keys)
    assert read_learnt(tmp_path) == keys
    assert (tmp_path / "learnt.txt").read_text().splitlines() == sorted(keys)
    assert read_learnt(tmp_path / "elsewhere") is None


def test_each_epoch_trains_every_new_row_and_a_fresh_share_of_the_learnt_ones():
    old, new = _rows(100), _rows(3, "timer")
    for row in new:
        row["text"] += " please"
    compound = [{"text": "a and b", "call": "weather(); timecheck()", "skill": "compound"}] * 10
    rows = old + new + compound
    learnt = learnt_keys(old)
    assert unlearnt(rows, learnt) == new
    first, second = (replayed(rows, learnt, 0.2, seed=0, epoch=e) for e in (0, 1))
    for epoch in (first, second):
        assert all(row in epoch for row in new)
        assert len(epoch) == 3 + round(0.2 * 110) == replayed_size(rows, learnt, 0.2)
    assert first != second  # drawn afresh each epoch...
    assert replayed(rows, learnt, 0.2, seed=0, epoch=0) == first  # ...and the same again on resume
    assert replayed(rows, learnt, 1.0, seed=0, epoch=0) is rows
    assert replayed(rows, None, 0.2, seed=0, epoch=0) is rows  # a router that lists nothing: every row
    assert replayed_size(rows, None, 0.2) == len(rows)


def test_a_new_correction_weighs_several_rows_and_a_learnt_one_one():
    old = _rows(10)
    fix = {"text": "brief me", "call": "news()", "skill": "news", "corrected": True}
    rows = old + [fix]
    epoch = replayed(rows, learnt_keys(old), 0.5, seed=0, epoch=0)
    assert CORRECTION_WEIGHT > 1 and epoch.count(fix) == CORRECTION_WEIGHT
    assert len(epoch) == CORRECTION_WEIGHT + 5 == replayed_size(rows, learnt_keys(old), 0.5)
    assert replayed(rows, learnt_keys(rows), 0.5, seed=0, epoch=0).count(fix) <= 1  # learnt: a row like any other
