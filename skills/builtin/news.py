"""Built-in skill: headlines from the configured RSS/Atom feeds, optionally filtered by topic."""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor

import httpx

from skills import SkillContext, SkillFailed, printable, skill

logger = logging.getLogger(__name__)


_LINKS = {"a", "an", "the", "in", "on", "of", "about", "for", "from", "at", "to", "with", "news", "latest"}
"""Words a topic holds that headlines need not: "wildfires in California" is about wildfires and California."""


def topic_words(topic: str) -> list[list[str]]:
    """What a headline must mention: every word of one of the topic's alternatives ("science and technology",
    "Chile or Peru": either), without linking words ("wildfires in California" -> wildfires, california)."""
    alternatives = []
    for part in re.split(r"\b(?:and|or)\b|[,&/]", topic.casefold()):
        alternatives.append([w for w in re.findall(r"\w+", part) if w not in _LINKS])
    return [words for words in alternatives if words]  # none left ("the news"): every headline


def _matches(entry: dict, alternatives: list[list[str]]) -> bool:
    text = f"{entry.get('title', '')} {entry.get('summary', '')} " + " ".join(
        t.get("term", "") for t in entry.get("tags", []) or []
    )
    found = set(re.findall(r"\w+", text.casefold()))
    # a word matches itself or its plural/singular ("election" ~ "elections")
    return not alternatives or any(
        all(w in found or w + "s" in found or w.rstrip("s") in found for w in words) for words in alternatives
    )


def _fetch(client: httpx.Client, url: str) -> httpx.Response | httpx.HTTPError:
    try:
        return client.get(url).raise_for_status()
    except httpx.HTTPError as exc:
        return exc


@skill
def news(context: SkillContext, topic: str | None = None) -> str:
    """The latest headlines, optionally about a topic."""
    import feedparser

    settings = context.settings
    if not settings.news.feeds:
        raise SkillFailed("No news feeds are configured; add RSS URLs to skills.news.feeds in the config.")
    feeds, entries, failures = settings.news.feeds, [], []
    with httpx.Client(timeout=settings.http_timeout_s, follow_redirects=True) as client, \
            ThreadPoolExecutor(max_workers=min(len(feeds), 8)) as pool:  # at once: slow feeds cost one timeout
        answers = list(pool.map(lambda url: _fetch(client, url), feeds))
    for url, answer in zip(feeds, answers, strict=True):
        if isinstance(answer, httpx.HTTPError):
            logger.warning("news feed %s failed: %s", url, answer)
            failures.append(url)
            continue
        parsed = feedparser.parse(answer.content)
        if parsed.bozo and not parsed.entries:
            logger.warning("news feed %s is not RSS/Atom: %s", url, parsed.get("bozo_exception"))
            failures.append(url)
        entries.extend(parsed.entries)
    if not entries and failures:
        raise SkillFailed("I can't reach any news feed right now; check the internet connection.")
    wanted = topic_words(topic or "")
    titles = list(dict.fromkeys(printable(" ".join(e.get("title", "").split())) for e in entries
                                if _matches(e, wanted)))  # one line each, whatever the feed sent
    titles = [t for t in titles if t][: settings.news.max_headlines]
    if not titles:
        return f"I found no headlines about {printable(topic)}." if topic else "The feeds have no headlines right now."
    about = f" about {printable(topic.strip())}" if topic else ""
    return f"Here are the latest headlines{about}: " + " ".join(
        t if t.endswith((".", "!", "?")) else t + "." for t in titles
    )
