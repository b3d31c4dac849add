"""Built-in skill: current weather from Open-Meteo (no key). Base URLs come from the config."""

from __future__ import annotations

import re

import httpx

from skills import SkillContext, SkillFailed, printable, skill
from skills.places import COUNTRY_ALIASES, state_name

WMO_CODES = {
    0: "clear sky", 1: "mainly clear", 2: "partly cloudy", 3: "overcast", 45: "fog", 48: "freezing fog",
    51: "light drizzle", 53: "drizzle", 55: "heavy drizzle", 56: "freezing drizzle", 57: "heavy freezing drizzle",
    61: "light rain", 63: "rain", 65: "heavy rain", 66: "freezing rain", 67: "heavy freezing rain",
    71: "light snow", 73: "snow", 75: "heavy snow", 77: "snow grains", 80: "light showers", 81: "showers",
    82: "violent showers", 85: "snow showers", 86: "heavy snow showers", 95: "a thunderstorm",
    96: "a thunderstorm with hail", 99: "a thunderstorm with heavy hail",
}  # fmt: skip


def _get(client: httpx.Client, url: str, params: dict, what: str) -> dict:
    try:
        response = client.get(url, params=params)
        response.raise_for_status()
        return response.json()
    except httpx.HTTPStatusError as exc:
        raise SkillFailed(
            f"The weather service answered {exc.response.status_code} for the {what}; try again later."
        ) from exc
    except (httpx.HTTPError, ValueError) as exc:
        raise SkillFailed(
            f"I can't reach the weather service ({type(exc).__name__}); check the internet connection."
        ) from exc


def _pick(results: list[dict], qualifier: str) -> dict | None:
    """The first result, or with a qualifier ("Paris, Texas", "Phoenix, AZ", "Moscow, US") the first whose country
    or region names it in whole words, a state's abbreviation first; None when none does: never a namesake
    elsewhere."""
    wanted = qualifier.casefold()
    if not wanted:
        return results[0]
    state = (state_name(qualifier) or "").casefold()
    for place in results:
        if state and (place.get("admin1") or "").casefold() == state:
            return place
    words = re.compile(rf"(?<!\w){re.escape(wanted)}(?!\w)")  # "us" is not in "Russia"
    for place in results:
        fields = [place.get(key, "") or "" for key in ("country", "admin1", "admin2", "country_code")]
        if any(words.search(f.casefold()) for f in fields) or COUNTRY_ALIASES.get(wanted) == place.get("country_code"):
            return place
    return None


@skill
def weather(context: SkillContext, location: str | None = None) -> str:
    """Current weather at a place; without one, at the configured home location."""
    settings = context.settings
    place_name = (location or settings.home_location or "").strip()
    if not place_name:
        raise SkillFailed("Where? No home location is set: set skills.home_location in the config, or name a place.")
    name, comma, qualifier = (part.strip() for part in place_name.partition(","))
    # "paris texas", as speech is written: the search knows single names only, so the last words may qualify
    words = name.split()
    tries = [(name, qualifier)] if comma else [(" ".join(words[:cut]), " ".join(words[cut:])) for cut in
                                               (len(words), -1, -2)]  # fmt: skip
    tries = [(name, qualifier) for name, qualifier in tries if name]
    if not tries:  # ",", ", Texas": nothing to search for
        raise SkillFailed(f"Where? '{printable(place_name)}' names no place; say one, like 'the weather in Oslo'.")
    imperial = settings.weather.units == "imperial"
    place = None
    with httpx.Client(timeout=settings.http_timeout_s) as client:
        for name, qualifier in tries:
            found = _get(client, settings.weather.geocoding_url,
                         {"name": name, "count": 10, "language": "en", "format": "json"}, "place search")
            results = found.get("results") or []
            place = _pick(results, qualifier) if results else None
            if place or (results and comma):
                break
        if place is None:
            where = f" in {qualifier}" if comma and results else ""
            raise SkillFailed(f"I don't know a place called {printable(name if where else place_name)}"
                              f"{printable(where)}.")  # fmt: skip
        params = {
            "latitude": place["latitude"], "longitude": place["longitude"], "timezone": "auto",
            "current": "temperature_2m,apparent_temperature,weather_code,wind_speed_10m",
            "temperature_unit": "fahrenheit" if imperial else "celsius",
            "wind_speed_unit": "mph" if imperial else "kmh",
        }  # fmt: skip
        current = _get(client, settings.weather.forecast_url, params, "forecast").get("current") or {}
    try:
        temperature = round(float(current["temperature_2m"]))
        feels = round(float(current.get("apparent_temperature", temperature)))
        wind = round(float(current.get("wind_speed_10m", 0)))
        sky = WMO_CODES.get(int(current.get("weather_code", -1)), "")
    except (KeyError, TypeError, ValueError) as exc:
        raise SkillFailed("The weather service sent an answer I can't read; try again later.") from exc
    where = ", ".join(p for p in (place.get("name"), place.get("country")) if p)
    degrees = "°F" if imperial else "°C"
    text = f"In {where} it's {temperature}{degrees}"
    if sky:
        text += f" with {sky}"
    if feels != temperature:
        text += f", feels like {feels}{degrees}"
    return text + f"; wind {wind} {'mph' if imperial else 'km/h'}."
