from __future__ import annotations

import json

import pytest

from skills import SkillContext, SkillSettings, load_registry
from tests.servers import StubServer


@pytest.fixture
def notified() -> list[str]:
    return []


DESKTOP_APPS = {"firefox": "Firefox Web Browser", "org.gnome.Calculator": "Calculator", "spotify": "Spotify",
                "libreoffice-writer": "LibreOffice Writer", "org.gnome.Terminal": "Terminal", "vlc": "VLC media player",
                "gimp": "GNU Image Manipulation Program", "code": "Visual Studio Code"}  # fmt: skip
"""A typical desktop's applications, for routing tests: runapp names only installed apps (each runs `true`)."""


@pytest.fixture(scope="session")
def desktop(tmp_path_factory):
    """A folder of .desktop files (``skills.runapp.app_dirs``) for DESKTOP_APPS."""
    folder = tmp_path_factory.mktemp("desktop") / "applications"
    folder.mkdir()
    for file, name in DESKTOP_APPS.items():
        (folder / f"{file}.desktop").write_text(f"[Desktop Entry]\nType=Application\nName={name}\nExec=true\n")
    return folder


@pytest.fixture
def settings(tmp_path) -> SkillSettings:
    """Settings that touch nothing outside the test: notes in tmp, unreachable URLs unless a test sets them."""
    return SkillSettings(
        notes_db=tmp_path / "notes.db",
        http_timeout_s=2,
        timeout_s=5,
        weather={"geocoding_url": "http://127.0.0.1:9/search", "forecast_url": "http://127.0.0.1:9/forecast"},
        news={"feeds": []},
        runapp={"app_dirs": [tmp_path / "applications"]},
    )


@pytest.fixture
def registry(settings, notified):
    return load_registry(SkillContext(settings, notified.append))


@pytest.fixture
def stub():
    server = StubServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path, monkeypatch, desktop):
    """No test reads the developer's real config, skills, installed apps or API keys."""
    monkeypatch.setenv("SKILLCALL_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("SKILLCALL_SKILLS__RUNAPP__APP_DIRS", json.dumps([str(desktop)]))
    monkeypatch.setenv("SKILLCALL_SKILLS_DIR", str(tmp_path / "user-skills"))
    monkeypatch.setenv("SKILLCALL_SKILLS__NOTES_DB", str(tmp_path / "cli-notes.db"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
