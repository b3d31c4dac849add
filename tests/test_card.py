"""A router folder's card: typed, written and read in one place, cards of earlier versions included."""

import json

import pytest

from finetune.card import ROUTER_CARD, ROUTER_DIR, RouterCard, load_card, write_card


def test_a_card_round_trips_and_a_bad_one_says_what_is_wrong(tmp_path):
    card = RouterCard(base="bundled", skills={"weather": "weather(location: str | None = None)"}, note="Zürich")
    write_card(tmp_path, card)
    assert load_card(tmp_path) == card and load_card(tmp_path).note == "Zürich"  # a key it does not know is kept
    assert "Zürich" in (tmp_path / ROUTER_CARD).read_text(encoding="utf-8")  # written as UTF-8, not escaped
    (tmp_path / ROUTER_CARD).write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="a JSON list, not an object"):
        load_card(tmp_path)
    (tmp_path / ROUTER_CARD).write_text(json.dumps({"skills": ["weather"]}))
    with pytest.raises(ValueError, match="skills"):
        load_card(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_card(tmp_path / "nowhere")


def test_the_shipped_card_reads_and_writes_back_unchanged(tmp_path):
    card = load_card(ROUTER_DIR)
    assert card.skills and card.files.gguf == "router.gguf" and card.dataset.validation_in_training is False
    assert card.training.rows_per_epoch is None  # written before routers recorded it
    write_card(tmp_path, card)
    assert (tmp_path / ROUTER_CARD).read_bytes() == (ROUTER_DIR / ROUTER_CARD).read_bytes()


def test_an_older_card_takes_defaults_for_what_it_lacks_and_keeps_its_keys(tmp_path):
    old = {"base": "bundled", "template": "chatml", "training": {"steps": 10, "loss_curve": "old.png"}}
    (tmp_path / ROUTER_CARD).write_text(json.dumps(old))
    card = load_card(tmp_path)
    assert (card.files.gguf, card.dataset.seed, card.dataset.compound, card.span_starts) == ("router.gguf", None, 0.0, {})
    assert card.member_folders() == [] and card.unlearnt_skills(["weather"]) == []  # no skills listed: none new
    assert not card.examples_changed("0" * 64)  # no fingerprint recorded: nothing to compare
    write_card(tmp_path, card)
    assert json.loads((tmp_path / ROUTER_CARD).read_text()) == old


def test_an_ensemble_lists_its_routers_by_folder():
    assert RouterCard(members=["members/2"]).member_folders() == ["members/2"]
    assert "members" not in RouterCard(members=[]).to_json()  # a single router's card has none
    for bad in ("members/2", [""], [3]):
        with pytest.raises(ValueError, match="not a list of folders"):
            RouterCard(members=bad).member_folders()


def test_what_a_card_is_checked_against():
    card = RouterCard(base="b", template="compact", skill_list="none", skills={"weather": "weather()"},
                      examples_fingerprint="f", lora={"r": 16, "alpha": 32.0, "target_modules": ["q_proj"]})
    member = card.model_copy(update={"template": "chatml", "skills": {}})
    assert card.prompt_differences(member) == ["template", "skills"] and card.prompt_differences(card) == []
    lora = {"r": 16, "alpha": 32.0, "target_modules": ["q_proj"]}
    assert card.recipe_differences("b", "compact", lora) == {}
    assert card.recipe_differences("c", "compact", {**lora, "r": 8}) == {"base": "b", "lora": lora}
    assert card.examples_changed("g") and not card.examples_changed("f") and not card.examples_changed(None)
    assert card.unlearnt_skills(["weather", "greet", "ask"]) == ["ask", "greet"]
