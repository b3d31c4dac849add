"""news against RSS and Atom feeds served on 127.0.0.1."""

from __future__ import annotations

import pytest

from skills import SkillCall

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>World</title>
<item><title>Elections in Chile go to a second round</title><description>Voters...</description></item>
<item><title>Storm closes ports in Norway</title><description>Weather warning</description></item>
<item><title>Champions League: late goal sinks holders</title><category>Sports</category></item>
</channel></rss>"""
ATOM = b"""<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Tech</title>
<entry><title>New open-source speech model released</title><summary>Speech and AI</summary></entry>
</feed>"""


@pytest.fixture
def feeds(stub, settings):
    stub.routes["/rss"] = lambda request: (200, "application/rss+xml", RSS)
    stub.routes["/atom"] = lambda request: (200, "application/atom+xml", ATOM)
    settings.news.feeds = [f"{stub.url}/rss", f"{stub.url}/atom"]
    settings.news.max_headlines = 3
    return stub


def test_headlines_from_all_feeds(registry, feeds):
    result = registry.dispatch(registry.parse("news()"))
    assert result.ok
    assert result.text == ("Here are the latest headlines: Elections in Chile go to a second round. "
                           "Storm closes ports in Norway. Champions League: late goal sinks holders.")


@pytest.mark.parametrize(
    ("topic", "headline"),
    [("election", "Elections in Chile"), ("sports", "late goal"), ("speech", "speech model"), ("Norway", "Storm"),
     ("the election in Chile", "Elections in Chile"), ("ports in Norway news", "Storm"),  # linking words aside
     ("cricket and sports", "late goal")],  # either side of "and"
)
def test_topic_filters_titles_summaries_and_categories(registry, feeds, topic, headline):
    result = registry.dispatch(registry.parse(f'news(topic="{topic}")'))
    assert result.ok and result.text.startswith(f"Here are the latest headlines about {topic}: ")
    assert headline in result.text
    assert sum(h in result.text for h in ("Elections", "Storm", "late goal", "speech model")) == 1


def test_no_match_and_unreachable(registry, feeds, settings):
    assert registry.dispatch(registry.parse('news(topic="cricket")')).text == "I found no headlines about cricket."
    settings.news.feeds = ["http://127.0.0.1:9/rss"]
    result = registry.dispatch(registry.parse("news()"))
    assert not result.ok and "can't reach any news feed" in result.text


def test_a_broken_feed_is_skipped(registry, feeds, settings):
    feeds.routes["/html"] = lambda request: (200, "text/html", b"<html><body>not a feed")
    settings.news.feeds = [f"{feeds.url}/html", f"{feeds.url}/missing", f"{feeds.url}/atom"]
    result = registry.dispatch(registry.parse("news()"))
    assert result.ok and "speech model" in result.text


def test_no_feeds_configured(registry):
    result = registry.dispatch(registry.parse("news()"))
    assert not result.ok and "skills.news.feeds" in result.text


def test_feeds_are_read_at_once_so_slow_ones_cost_one_timeout(registry, feeds, settings):
    import time

    feeds.routes["/slow"] = lambda request: (time.sleep(3), (200, "application/rss+xml", RSS))[1]
    settings.news.feeds = [f"{feeds.url}/slow", f"{feeds.url}/slow", f"{feeds.url}/slow"]
    settings.http_timeout_s, settings.timeout_s = 0.5, 1.2  # one after another would take 1.5 s, past the limit
    result = registry.dispatch(registry.parse("news()"))
    assert not result.ok and "can't reach any news feed" in result.text


def test_the_topic_and_headlines_are_echoed_on_one_printable_line(registry, feeds):
    result = registry.dispatch(SkillCall("news", {"topic": "cricket\n\x1b[2J"}))
    assert result.text == "I found no headlines about cricket\\n\\x1b[2J."
    feeds.routes["/rss"] = lambda request: (200, "application/rss+xml", RSS.replace(
        b"Storm closes ports", b"Storm\n  closes \x1b[5mports"))  # fmt: skip
    result = registry.dispatch(SkillCall("news", {"topic": "Norway\u202e"}))  # a right-to-left override after it
    assert result.ok and result.text == \
        "Here are the latest headlines about Norway\\u202e: Storm closes \\x1b[5mports in Norway."
