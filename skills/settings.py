"""Settings the built-in skills read: one pydantic object, built once by the assistant's config and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

UserPath = Annotated[Path, AfterValidator(Path.expanduser)]
"""A path from the config file or a ``SKILLCALL_*`` variable: ``~`` is the user's home, as in a shell."""


class WeatherSettings(BaseModel):
    """Open-Meteo endpoints (no key needed); point them elsewhere for a mirror or a test server."""

    model_config = ConfigDict(extra="forbid")

    geocoding_url: str = Field("https://geocoding-api.open-meteo.com/v1/search", description="Place search endpoint.")
    forecast_url: str = Field("https://api.open-meteo.com/v1/forecast", description="Forecast endpoint.")
    units: Literal["metric", "imperial"] = Field("metric", description="°C and km/h, or °F and mph.")


class NewsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feeds: list[str] = Field(
        default_factory=lambda: [
            "https://feeds.bbci.co.uk/news/rss.xml",
            "https://feeds.bbci.co.uk/news/technology/rss.xml",
            "https://feeds.bbci.co.uk/sport/rss.xml",
        ],
        description="RSS or Atom feed URLs to read headlines from.",
    )
    max_headlines: int = Field(5, ge=1, le=20, description="How many headlines a reply reads.")


class AskSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(None, description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1.")
    model: str = Field("gpt-4o-mini", description="Chat model name at that endpoint.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable that holds the API key.")
    system_prompt: str = Field(
        "You are a voice assistant. Answer in one to three short spoken sentences, no markdown.",
        description="System message sent with every question.",
    )
    max_tokens: int = Field(200, ge=1)


class RunappSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    app_dirs: list[UserPath] | None = Field(
        None, description="Folders with .desktop files (Linux) or .app bundles (macOS); None = the platform's."
    )
    min_score: float = Field(80.0, ge=0, le=100, description="Fuzzy match score (0-100) an app name must reach.")


class SkillSettings(BaseModel):
    """Everything a built-in skill may read. Each group is a section of the config file (``[skills.weather]``)."""

    model_config = ConfigDict(extra="forbid")

    home_location: str | None = Field(None, description="Place used by weather() when no location is said.")
    timeout_s: float = Field(10.0, gt=0, description="How long a skill may run before dispatch gives up on it.")
    http_timeout_s: float = Field(5.0, gt=0, description="Timeout of each HTTP request a skill makes.")
    notes_db: UserPath = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("skillcall")) / "notes.db",
        description="SQLite file the notes skill keeps notes in.",
    )
    weather: WeatherSettings = Field(default_factory=WeatherSettings)
    news: NewsSettings = Field(default_factory=NewsSettings)
    ask: AskSettings = Field(default_factory=AskSettings)
    runapp: RunappSettings = Field(default_factory=RunappSettings)
