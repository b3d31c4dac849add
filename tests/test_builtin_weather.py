"""weather against an HTTP server on 127.0.0.1 that answers in Open-Meteo's shapes."""

from __future__ import annotations

import pytest

from skills import SkillCall
from tests.servers import json_response

PLACES = {
    "Berlin": [{"name": "Berlin", "latitude": 52.52, "longitude": 13.41, "country": "Germany",
                "country_code": "DE", "admin1": "Land Berlin", "timezone": "Europe/Berlin"}],
    "Paris": [
        {"name": "Paris", "latitude": 48.85, "longitude": 2.35, "country": "France", "country_code": "FR",
         "admin1": "Île-de-France"},
        {"name": "Paris", "latitude": 33.66, "longitude": -95.55, "country": "United States",
         "country_code": "US", "admin1": "Texas"},
    ],
    "Moscow": [
        {"name": "Moscow", "latitude": 55.75, "longitude": 37.62, "country": "Russia", "country_code": "RU",
         "admin1": "Moscow"},
        {"name": "Moscow", "latitude": 46.73, "longitude": -117.0, "country": "United States",
         "country_code": "US", "admin1": "Idaho"},
    ],
}  # fmt: skip


@pytest.fixture
def weather_server(stub, settings):
    def search(request):
        results = {k.casefold(): v for k, v in PLACES.items()}.get(request.query["name"].casefold())  # as Open-Meteo
        return json_response({"results": results} if results else {"generationtime_ms": 0.1})

    def forecast(request):
        hot = float(request.query["latitude"]) < 40
        return json_response({
            "latitude": float(request.query["latitude"]), "longitude": float(request.query["longitude"]),
            "current_units": {"temperature_2m": "°C", "wind_speed_10m": "km/h"},
            "current": {"time": "2026-11-22T10:00", "interval": 900, "temperature_2m": 31.4 if hot else 3.2,
                        "apparent_temperature": 1.1, "weather_code": 3, "wind_speed_10m": 12.6},
        })  # fmt: skip

    stub.routes.update({"/v1/search": search, "/v1/forecast": forecast})
    settings.weather.geocoding_url = f"{stub.url}/v1/search"
    settings.weather.forecast_url = f"{stub.url}/v1/forecast"
    return stub


def test_weather_at_a_place(registry, weather_server):
    result = registry.dispatch(registry.parse('weather(location="Berlin")'))
    assert result.ok
    assert result.text == "In Berlin, Germany it's 3°C with overcast, feels like 1°C; wind 13 km/h."
    forecast = weather_server.requests[-1]
    assert forecast.query["latitude"] == "52.52" and forecast.query["current"].startswith("temperature_2m")


def test_a_qualifier_after_a_comma_picks_the_place(registry, weather_server):
    result = registry.dispatch(registry.parse('weather(location="Paris, Texas")'))
    assert result.ok and "United States it's 31°C" in result.text
    assert weather_server.requests[0].query["name"] == "Paris"
    result = registry.dispatch(registry.parse('weather(location="Paris, Tennessee")'))  # not the one in France
    assert not result.ok and result.text == "I don't know a place called Paris in Tennessee."
    assert "France it's" in registry.dispatch(registry.parse('weather(location="Paris, France")')).text
    assert "In Berlin" in registry.dispatch(registry.parse('weather(location="Berlin, Germany")')).text
    assert "United States it's" in registry.dispatch(registry.parse('weather(location="Paris, TX")')).text
    assert "United States it's" in registry.dispatch(registry.parse('weather(location="Moscow, US")')).text  # not "rUSsia"
    assert "Russia it's" in registry.dispatch(registry.parse('weather(location="Moscow, Russia")')).text


def test_a_qualifier_without_a_comma_as_speech_is_written(registry, weather_server):
    result = registry.dispatch(registry.parse('weather(location="paris texas")'))
    assert result.ok and "United States it's 31°C" in result.text
    assert [r.query["name"] for r in weather_server.requests if "name" in r.query] == ["paris texas", "paris"]


def test_home_location_is_used_without_one(registry, weather_server, settings):
    settings.home_location = "Berlin"
    assert "In Berlin" in registry.dispatch(SkillCall("weather")).text


def test_no_location_and_no_home_says_how_to_set_it(registry, weather_server):
    result = registry.dispatch(SkillCall("weather"))
    assert not result.ok and "skills.home_location" in result.text


def test_unknown_place(registry, weather_server):
    result = registry.dispatch(registry.parse('weather(location="Atlantis")'))
    assert not result.ok and result.text == "I don't know a place called Atlantis."


def test_offline_gives_a_clear_reply(registry):
    result = registry.dispatch(registry.parse('weather(location="Berlin")'))
    assert not result.ok
    assert result.text.startswith("I can't reach the weather service")


def test_server_error_and_garbage(registry, weather_server):
    weather_server.routes["/v1/forecast"] = lambda request: (503, "text/plain", b"busy")
    assert "answered 503" in registry.dispatch(registry.parse('weather(location="Berlin")')).text
    weather_server.routes["/v1/forecast"] = lambda request: (200, "application/json", b"{not json")
    assert "can't reach" in registry.dispatch(registry.parse('weather(location="Berlin")')).text
    weather_server.routes["/v1/forecast"] = lambda request: json_response({"current": {"temperature_2m": "hot"}})
    assert "can't read" in registry.dispatch(registry.parse('weather(location="Berlin")')).text


@pytest.mark.parametrize("location", [",", ", , ,", " , Texas"])
def test_a_location_that_names_no_place_says_so(registry, weather_server, location):
    result = registry.dispatch(SkillCall("weather", {"location": location}))
    assert not result.ok
    assert result.text == f"Where? '{location.strip()}' names no place; say one, like 'the weather in Oslo'."
    assert not weather_server.requests  # nothing to search for


def test_an_unknown_place_is_echoed_on_one_printable_line(registry, weather_server):
    result = registry.dispatch(SkillCall("weather", {"location": "Atlantis\n\x1b[2J"}))
    assert not result.ok and result.text == "I don't know a place called Atlantis\\n\\x1b[2J."
