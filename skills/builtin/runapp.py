"""Built-in skill: open an installed desktop application, resolved by fuzzy name, launched without a shell.

Linux: XDG ``.desktop`` entries; macOS: ``.app`` bundles. Anything that resolves to no installed app is refused.
"""

from __future__ import annotations

import configparser
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from skills import SkillContext, SkillFailed, printable, skill

logger = logging.getLogger(__name__)

SHELL_CHARACTERS = set(";|&$`<>(){}[]\\\n\r*?!'\"")
_FILLER = {"the", "app", "application", "program", "my", "a"}
_FIELD_CODE = re.compile(r"%[fFuUdDnNickvm]")
TERMINALS = (("x-terminal-emulator", "-e"), ("gnome-terminal", "--"), ("konsole", "-e"), ("xfce4-terminal", "-x"),
             ("alacritty", "-e"), ("kitty",), ("xterm", "-e"))  # fmt: skip
"""How to run a program in a terminal window, first installed wins (an entry with ``Terminal=true``: htop)."""


@dataclass(frozen=True)
class App:
    name: str
    argv: tuple[str, ...]
    aliases: tuple[str, ...]
    source: Path
    terminal: bool = False


def _normal(text: str) -> str:
    words = re.findall(r"[\w+.-]+", text.casefold())
    return " ".join(w for w in words if w not in _FILLER)


def app_dirs(configured: list[Path] | None) -> list[Path]:
    if configured is not None:
        return [Path(p).expanduser() for p in configured]
    if sys.platform == "darwin":
        return [Path("/Applications"), Path("/System/Applications"), Path.home() / "Applications"]
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local/share")
    data_dirs = os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share"
    return [Path(d) / "applications" for d in [data_home, *data_dirs.split(":")] if d]


def _desktop_entry(path: Path) -> App | None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read(path, encoding="utf-8")
        entry = parser["Desktop Entry"]
    except (configparser.Error, KeyError, UnicodeDecodeError, OSError):
        return None
    if entry.get("Type", "Application") != "Application" or entry.get("NoDisplay") == "true" \
            or entry.get("Hidden") == "true" or not entry.get("Exec") or not entry.get("Name"):
        return None
    if entry.get("TryExec") and not shutil.which(entry["TryExec"]):
        return None
    try:
        argv = [a.replace("%%", "%") for a in shlex.split(entry["Exec"]) if not _FIELD_CODE.fullmatch(a)]
    except ValueError:
        return None
    if not argv:
        return None
    aliases = [entry["Name"], entry.get("GenericName", ""), path.stem.rsplit(".", 1)[-1], Path(argv[0]).name]
    aliases += [k for k in entry.get("Keywords", "").split(";")]
    if "TerminalEmulator" in entry.get("Categories", ""):
        aliases.append("terminal")
    return App(entry["Name"], tuple(argv), tuple(a for a in {_normal(a) for a in aliases} if a), path,
               entry.get("Terminal") == "true")  # fmt: skip


_READ: dict[tuple[Path, ...], tuple[float, tuple, list[App]]] = {}
_RECHECK_S = 1.0


def installed_apps(dirs: list[Path]) -> list[App]:
    """Every launchable app in the folders; earlier folders win for the same file name (XDG precedence). Read once
    and again only when a folder changed (an app installed, removed or renamed), looked at once a second at most:
    the router asks for every span of an utterance."""
    key, now = tuple(dirs), time.monotonic()
    cached = _READ.get(key)
    if cached and now - cached[0] < _RECHECK_S:
        return cached[2]
    stamp = _stamp(dirs)
    if cached and cached[1] == stamp:
        _READ[key] = (now, stamp, cached[2])
        return cached[2]
    apps = _read_apps(dirs)
    _READ[key] = (now, stamp, apps)
    return apps


def _stamp(dirs: list[Path]) -> tuple:
    """The folders' modification times, subfolders included: they change when an entry is added, removed or
    renamed (package managers and editors write a new file, then rename it)."""
    stamps = []
    for directory in dirs:
        for root, _, _ in os.walk(directory):
            try:
                stamps.append((root, os.stat(root).st_mtime_ns))
            except OSError:
                continue
    return tuple(stamps)


def _read_apps(dirs: list[Path]) -> list[App]:
    apps: dict[str, App] = {}
    for directory in dirs:
        if not directory.is_dir():
            continue
        if sys.platform == "darwin" or any(directory.glob("*.app")):
            for bundle in sorted(directory.glob("*.app")):
                apps.setdefault(bundle.name, App(bundle.stem, ("open", "-a", str(bundle)), (_normal(bundle.stem),),
                                                 bundle))  # fmt: skip
        for path in sorted(directory.rglob("*.desktop")):
            app = _desktop_entry(path)
            if app:
                apps.setdefault(path.name, app)
    return list(apps.values())


def match(program: str, apps: list[App], min_score: float) -> App | None:
    """The installed app a spoken name means, or None."""
    from rapidfuzz import fuzz, process

    wanted = _normal(program)
    if not wanted or SHELL_CHARACTERS & set(program):
        return None
    best = process.extractOne(wanted, _aliases(apps), scorer=fuzz.ratio, score_cutoff=min_score)
    return apps[best[2][0]] if best else None


_ALIASES: dict[int, tuple[list[App], dict[tuple[int, str], str]]] = {}


def _aliases(apps: list[App]) -> dict[tuple[int, str], str]:
    """Every alias of the apps, keyed (index, alias): built once per list ``installed_apps`` read, not once per
    name asked about (the router asks about every span of an utterance)."""
    cached = _ALIASES.get(id(apps))
    if cached is None or cached[0] is not apps:
        cached = (apps, {(i, alias): alias for i, app in enumerate(apps) for alias in app.aliases})
        _ALIASES.clear()  # the list read last is the one asked about
        _ALIASES[id(apps)] = cached
    return cached[1]


def resolve(program: str, apps: list[App], min_score: float) -> App:
    """The installed app a spoken name means, or ``SkillFailed`` naming close matches."""
    from rapidfuzz import fuzz, process

    bad = sorted(SHELL_CHARACTERS & set(program))
    if bad:
        raise SkillFailed(f"I won't open '{printable(program)}': app names don't contain {printable(' '.join(bad))}.")
    wanted = _normal(program)
    if not wanted:
        raise SkillFailed("Which app? Say its name, like 'open Firefox'.")
    if not apps:
        raise SkillFailed("I found no installed applications to open; check skills.runapp.app_dirs in the config.")
    found = match(program, apps, min_score)
    if found:
        return found
    close = process.extract(wanted, {i: _normal(a.name) for i, a in enumerate(apps)}, scorer=fuzz.WRatio, limit=3)
    names = ", ".join(apps[key].name for _, score, key in close if score >= 50)
    raise SkillFailed(f"I can't find an app called '{printable(program)}'." + (f" Did you mean {names}?" if names
                                                                                 else ""))  # fmt: skip


def can_open(program: str, context: SkillContext) -> bool:
    """Whether an installed app answers to ``program``: the router names only those (``@skill(values=...)``), so
    "turn on the coffee maker" cannot become runapp on a desktop without such an app."""
    settings = context.settings.runapp
    return match(program, installed_apps(app_dirs(settings.app_dirs)), settings.min_score) is not None


@skill(risky=True, values={"program": can_open})
def runapp(program: str, context: SkillContext) -> str:
    """Open an installed desktop application by name."""
    settings = context.settings.runapp
    app = resolve(program, installed_apps(app_dirs(settings.app_dirs)), settings.min_score)
    argv = list(app.argv)
    if app.terminal:  # it has no window of its own
        prefix = next((list(t) for t in TERMINALS if shutil.which(t[0])), None)
        if prefix is None:
            raise SkillFailed(f"{app.name} runs in a terminal, and I found no terminal program to open it in.")
        argv = prefix + argv
    try:
        subprocess.Popen(  # an argument list, never a shell
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as exc:
        raise SkillFailed(f"I found {app.name} but couldn't start it ({exc.strerror or exc}).") from exc
    logger.info("launched %s: %s", app.name, argv)
    return f"Opening {app.name}."
