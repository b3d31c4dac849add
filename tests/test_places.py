"""Offline place -> time zone resolution (the timecheck skill's engine)."""

from __future__ import annotations

import pytest

from skills import SkillFailed
from skills.places import resolve


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
def test_places_resolve_to_zones(place, name, zone):
    found_name, found_zone = resolve(place)
    assert (found_name, str(found_zone)) == (name, zone)



@pytest.mark.parametrize(
    ("place", "zone"),
    [
        ("lagos nigeria", "Africa/Lagos"), ("East Coast", "America/New_York"),
        ("Portland, Maine", "America/New_York"), ("portland oregon", "America/Los_Angeles"),  # a US state
        ("Victoria, British Columbia", "America/Vancouver"), ("st johns newfoundland", "America/St_Johns"),
        ("St. John's", "America/St_Johns"),  # apostrophes are not word breaks
        ("canary islands", "Atlantic/Canary"), ("Lord Howe Island", "Australia/Lord_Howe"), ("Maui", "Pacific/Honolulu"),
        ("netherlands", "Europe/Amsterdam"), ("the Netherlands", "Europe/Amsterdam"),  # GeoNames: "The Netherlands"
        ("the Bahamas", "America/Nassau"),  # but "Bahamas"
        ("India", "Asia/Kolkata"), ("Armenia", "Asia/Yerevan"), ("Chile", "America/Santiago"),  # not a town so named
        ("Ireland", "Europe/Dublin"), ("Holland", "Europe/Amsterdam"), ("Singapore", "Asia/Singapore"),
        ("Perth, Scotland", "Europe/London"), ("perth scotland", "Europe/London"), ("Perth", "Australia/Perth"),
        ("LA", "America/Los_Angeles"), ("Hong Kong, China", "Asia/Hong_Kong"),  # a city, not Laos; a territory
        ("Phoenix, AZ", "America/Phoenix"), ("Springfield, IL", "America/Chicago"),  # not Azerbaijan or Israel
        ("Paris, TX", "America/Chicago"), ("Kelowna, BC", "America/Vancouver"),  # postal abbreviations
        ("Berlin, DE", "Europe/Berlin"), ("Vancouver, CA", "America/Vancouver"),  # no such city in DE / CA state
    ],
)  # fmt: skip
def test_trailing_countries_states_and_regions(place, zone):
    assert str(resolve(place)[1]) == zone


def test_unknown_places_fail_clearly():
    with pytest.raises(SkillFailed, match="I don't know where Xyzzyville is"):
        resolve("Xyzzyville")
    with pytest.raises(SkillFailed, match="I don't know a place called Victoria in Australia"):
        resolve("Victoria, Australia")  # not Victoria in Hong Kong or Canada
    with pytest.raises(SkillFailed, match="I don't know a place called Columbus in Montana"):
        resolve("Columbus, Montana")  # not Columbus, Ohio


def test_preload_builds_the_index_the_first_lookup_needs(registry):
    from skills import places

    places._places.cache_clear()
    places._country_zones.cache_clear()
    assert registry.get("timecheck").warm is places.preload  # the daemon warms it up at start
    places.preload()
    assert places._places.cache_info().currsize == 1 and places._country_zones.cache_info().currsize == 1


def test_unknown_places_are_echoed_on_one_printable_line():
    with pytest.raises(SkillFailed) as caught:
        resolve("Xyzzyville\x1b[0m, Austr\x1b[0malia")
    assert "\x1b" not in str(caught.value) and "Xyzzyville\\x1b[0m" in str(caught.value)
    assert "Austr\\x1b[0malia" in str(caught.value)


@pytest.mark.parametrize(("typed", "city"), [("edinbrugh", "Edinburgh"), ("pheonix", "Phoenix"),
                                             ("sinsinnati", "Cincinnati"), ("kolkatta", "Kolkata")])
def test_a_city_name_misspelt_by_a_letter_or_two_is_the_city(typed, city):
    assert resolve(typed)[0] == city


@pytest.mark.parametrize("typed", ["xqzvbn", "dooa", "Edinbrugh, Texas"])
def test_no_guess_for_short_names_unlike_any_city_or_with_a_qualifier(typed):
    with pytest.raises(SkillFailed):
        resolve(typed)


def test_a_misspelt_number_word_as_people_type_it():
    from skills.spoken import parse_duration

    assert parse_duration("fourty minutes") == 2400


@pytest.mark.parametrize(("said", "zone"), [
    ("eastern standard time", "America/New_York"), ("central time zone", "America/Chicago"),
    ("mountain standard time", "America/Denver"), ("pst", "America/Los_Angeles"), ("alaska time", "America/Anchorage"),
    ("atlantic time", "America/Halifax"), ("central europe", "Europe/Berlin"), ("British Summer Time", "Europe/London"),
])  # fmt: skip
def test_a_time_zone_named_by_its_time(said, zone):
    assert str(resolve(said)[1]) == zone
