"""timecheck: offline place -> time zone."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from skills import SkillCall


def _said(zone: ZoneInfo | None) -> set[str]:
    """How the time reads now in ``zone`` (None: here), and a minute later: the dispatch runs in between."""
    now = datetime.now(zone) if zone else datetime.now().astimezone()
    return {f"{t:%-I:%M %p} on {t:%A}" for t in (now, now + timedelta(minutes=1))}


def test_reply_names_the_place_and_time(registry):
    expected = _said(ZoneInfo("Asia/Tokyo"))
    result = registry.dispatch(registry.parse('timecheck(location="Tokyo")'))
    assert result.ok and any(result.text == f"In Tokyo it's {said}." for said in expected), result.text


def test_local_time_without_a_place(registry):
    expected = _said(None)
    result = registry.dispatch(SkillCall("timecheck"))
    assert result.ok and any(result.text == f"It's {said}." for said in expected), result.text


def test_unknown_place(registry):
    result = registry.dispatch(registry.parse('timecheck(location="Xyzzyville")'))
    assert not result.ok and "I don't know where Xyzzyville is" in result.text


def test_an_unknown_place_is_echoed_on_one_printable_line(registry):
    result = registry.dispatch(SkillCall("timecheck", {"location": "Xyzzyville\n\x1b[2J"}))
    assert not result.ok and "I don't know where Xyzzyville\\n\\x1b[2J is" in result.text
