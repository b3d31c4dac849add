"""timecheck: offline place -> time zone."""

from __future__ import annotations

import pytest

from skills import SkillCall


@pytest.mark.parametrize(
    ("place", "name", "zone"),
    [
        ("Tokyo", "Tokyo", "Asia/Tokyo"),
        ("New York", "New York City", "America/New_York"),
        ("new york", "New York City", "America/New_York"),
        ("São Paulo", "São Paulo", "America/Sao_Paulo"),
        ("sao paulo", "São Paulo", "America/Sao_Paulo"),
        ("Cape Town, South Africa", "Cape Town", "Africa/Johannesburg"),
        ("Zürich", "Zürich", "Europe/Zurich"),
        ("Reykjavík", "Reykjavík", "Atlantic/Reykjavik"),
        ("Ho Chi Minh City", "Ho Chi Minh City", "Asia/Ho_Chi_Minh"),
        ("Japan", "Japan", "Asia/Tokyo"),
        ("UTC", "UTC", "UTC"),
    ],
)
def test_places_resolve_to_zones(registry, place, name, zone):
    module = registry.get("timecheck").function.__globals__
    found_name, found_zone = module["resolve"](place)
    assert (found_name, str(found_zone)) == (name, zone)


def test_reply_names_the_place_and_time(registry):
    result = registry.dispatch(registry.parse('timecheck(location="Tokyo")'))
    assert result.ok and result.text.startswith("In Tokyo it's ") and ("AM" in result.text or "PM" in result.text)


def test_local_time_without_a_place(registry):
    result = registry.dispatch(SkillCall("timecheck"))
    assert result.ok and result.text.startswith("It's ")


def test_unknown_place(registry):
    result = registry.dispatch(registry.parse('timecheck(location="Xyzzyville")'))
    assert not result.ok and "I don't know where Xyzzyville is" in result.text
