"""timecheck: offline place -> time zone."""

from __future__ import annotations

from skills import SkillCall


def test_reply_names_the_place_and_time(registry):
    result = registry.dispatch(registry.parse('timecheck(location="Tokyo")'))
    assert result.ok and result.text.startswith("In Tokyo it's ") and ("AM" in result.text or "PM" in result.text)


def test_local_time_without_a_place(registry):
    result = registry.dispatch(SkillCall("timecheck"))
    assert result.ok and result.text.startswith("It's ")


def test_unknown_place(registry):
    result = registry.dispatch(registry.parse('timecheck(location="Xyzzyville")'))
    assert not result.ok and "I don't know where Xyzzyville is" in result.text
