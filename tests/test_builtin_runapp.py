"""runapp: real .desktop files, a real launch, never a shell."""

from __future__ import annotations

import time

import pytest


@pytest.fixture
def apps(settings, tmp_path):
    folder = tmp_path / "applications"
    folder.mkdir()
    marker = tmp_path / "launched"

    def entry(file, name, exec_, extra=""):
        (folder / file).write_text(f"[Desktop Entry]\nType=Application\nName={name}\nExec={exec_}\n{extra}")

    entry("code.desktop", "Visual Studio Code", f"touch {marker}-code %F", "GenericName=Text Editor\nKeywords=vscode;")
    entry("org.gnome.Calculator.desktop", "Calculator", f"touch {marker}-calc")
    entry("xterm.desktop", "XTerm", f"touch {marker}-term", "Categories=System;TerminalEmulator;")
    entry("firefox.desktop", "Firefox Web Browser", f"touch {marker}-firefox %u", "GenericName=Web Browser")
    entry("hidden.desktop", "Secret Tool", f"touch {marker}-secret", "NoDisplay=true")
    entry("broken.desktop", "Broken", "unterminated 'quote")
    (folder / "garbage.desktop").write_bytes(b"\xff\xfe not an ini file")
    return marker


def _launched(marker, suffix, seconds=3.0):
    path = marker.parent / f"{marker.name}-{suffix}"
    end = time.monotonic() + seconds
    while time.monotonic() < end and not path.exists():
        time.sleep(0.02)
    return path.exists()


@pytest.mark.parametrize(
    ("spoken", "name", "suffix"),
    [
        ("visual studio code", "Visual Studio Code", "code"),
        ("vscode", "Visual Studio Code", "code"),
        ("calculator", "Calculator", "calc"),
        ("the calculator app", "Calculator", "calc"),
        ("terminal", "XTerm", "term"),
        ("Firefox", "Firefox Web Browser", "firefox"),
        ("firefoks", "Firefox Web Browser", "firefox"),
    ],
)
def test_resolves_and_launches(registry, apps, spoken, name, suffix):
    result = registry.dispatch(registry.parse(f'runapp(program="{spoken}")'))
    assert result.ok, result.text
    assert result.text == f"Opening {name}."
    assert _launched(apps, suffix)


@pytest.mark.parametrize(
    "spoken", ["firefox; touch /tmp/pwned", "calculator && reboot", "$(rm -rf ~)", "`id`", "code | sh", "a > b"]
)
def test_shell_metacharacters_are_refused_and_nothing_runs(registry, apps, spoken):
    result = registry.dispatch(registry.parse(f"runapp(program={spoken!r})"))
    assert not result.ok and result.text.startswith(f"I won't open '{spoken}'")
    time.sleep(0.2)
    assert not list(apps.parent.glob("launched-*"))


def test_a_refusal_shows_the_name_on_one_printable_line(registry, apps):
    from skills import SkillCall

    result = registry.dispatch(SkillCall("runapp", {"program": "firefox\ntouch /tmp/pwned"}))
    assert not result.ok
    assert result.text == "I won't open 'firefox\\ntouch /tmp/pwned': app names don't contain \\n."
    result = registry.dispatch(SkillCall("runapp", {"program": "fire\x1b[31mfox"}))
    assert not result.ok and result.text == "I won't open 'fire\\x1b[31mfox': app names don't contain [."
    result = registry.dispatch(SkillCall("runapp", {"program": "zzz\x1bzzz"}))
    assert not result.ok and result.text.startswith("I can't find an app called 'zzz\\x1bzzz'.")
    time.sleep(0.2)
    assert not list(apps.parent.glob("launched-*"))


def test_unknown_app_names_close_matches(registry, apps):
    result = registry.dispatch(registry.parse('runapp(program="Firefax Browser Nightly")'))
    assert not result.ok
    assert result.text.startswith("I can't find an app called 'Firefax Browser Nightly'. Did you mean Firefox")


def test_hidden_entries_are_not_opened(registry, apps):
    result = registry.dispatch(registry.parse('runapp(program="Secret Tool")'))
    assert not result.ok


def test_no_apps_at_all(registry):
    result = registry.dispatch(registry.parse('runapp(program="firefox")'))
    assert not result.ok and "skills.runapp.app_dirs" in result.text


def test_a_terminal_program_opens_in_a_terminal(registry, apps, tmp_path, monkeypatch):
    (tmp_path / "applications" / "htop.desktop").write_text(
        "[Desktop Entry]\nType=Application\nName=Htop\nExec=htop\nTerminal=true\n")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no terminal program at all
    result = registry.dispatch(registry.parse('runapp(program="htop")'))
    assert not result.ok and "runs in a terminal, and I found no terminal program" in result.text
    (tmp_path / "bin").mkdir()
    xterm = tmp_path / "bin" / "xterm"  # a terminal that notes what it was asked to run
    xterm.write_text(f'#!/bin/sh\necho "$@" > {apps}.tmp && /bin/mv {apps}.tmp {apps}-xterm\n')  # whole at once
    xterm.chmod(0o755)
    result = registry.dispatch(registry.parse('runapp(program="htop")'))
    assert result.ok and result.text == "Opening Htop."
    assert _launched(apps, "xterm") and (tmp_path / "launched-xterm").read_text() == "-e htop\n"


def test_can_open_says_which_names_an_installed_app_answers_to(registry, apps):
    from skills.builtin.runapp import can_open

    context = registry.context
    assert can_open("firefox", context) and can_open("the calculator app", context) and can_open("vscode", context)
    assert not can_open("coffee maker", context) and not can_open("the", context)
    assert not can_open("secret tool", context)  # NoDisplay: not an app to open
    assert not can_open("firefox; rm -rf ~", context)


def test_without_configured_folders_the_xdg_data_folders_are_read_and_read_again_when_they_change(
        tmp_path, monkeypatch):
    from skills import SkillContext, SkillSettings
    from skills.builtin.runapp import can_open

    home, shared = tmp_path / "home-data", tmp_path / "shared-data"
    for root in (home, shared):
        (root / "applications").mkdir(parents=True)
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    monkeypatch.setenv("XDG_DATA_DIRS", str(shared))
    (shared / "applications" / "org.kde.krita.desktop").write_text("[Desktop Entry]\nName=Krita\nExec=true\n")
    context = SkillContext(SkillSettings(runapp={"app_dirs": None}))
    assert can_open("krita", context) and not can_open("inkscape", context)
    (home / "applications" / "inkscape.desktop").write_text("[Desktop Entry]\nName=Inkscape\nExec=true\n")
    time.sleep(1.1)  # the folders are looked at again once a second at most
    assert can_open("inkscape", context)
    (shared / "applications" / "org.kde.krita.desktop").unlink()
    time.sleep(1.1)
    assert not can_open("krita", context)
