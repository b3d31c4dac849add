"""A router folder's card: written and read in one place."""

import json

import pytest

from finetune.card import ROUTER_CARD, ROUTER_DIR, card_members, load_card, write_card


def test_a_card_round_trips_and_a_bad_one_says_what_is_wrong(tmp_path):
    card = {"base": "bundled", "skills": {"weather": "weather(location: str | None = None)"}, "note": "Zürich"}
    write_card(tmp_path, card)
    assert load_card(tmp_path) == card
    assert "Zürich" in (tmp_path / ROUTER_CARD).read_text(encoding="utf-8")  # written as UTF-8, not escaped
    (tmp_path / ROUTER_CARD).write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="a JSON list, not an object"):
        load_card(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_card(tmp_path / "nowhere")


def test_an_ensemble_lists_its_routers_by_folder():
    assert card_members({}) == [] and card_members({"members": ["members/2"]}) == ["members/2"]
    with pytest.raises(ValueError, match="not a list of folders"):
        card_members({"members": "members/2"})
    assert load_card(ROUTER_DIR)["skills"]  # the shipped router's card reads
