"""Instruments as data: band boundaries, answer validation, scoring properties, loading."""

import json
import shutil
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.instruments import DATA_DIR, AnswerError, Catalogue, Instrument, load_catalogue

CATALOGUE = load_catalogue()
LICENSED_TEXTS = {"zbi4"}


def answers_scoring(instrument: Instrument, total: int) -> list[int]:
    """Answers that add up to ``total``, filling items from the first with the highest score."""
    answer_for_score: dict[int, int] = {}
    for value in instrument.answer_values:
        answer_for_score.setdefault(instrument.scoring.item_score(value), value)
    top = max(answer_for_score)
    answers = []
    for _ in instrument.items:
        step = min(total, top)
        answers.append(answer_for_score[step])
        total -= step
    assert total == 0, "total out of range"
    return answers


@pytest.mark.parametrize(
    "instrument_id,total,band,high_burden",
    [
        ("ediz_plus", 0, "none", False),
        ("ediz_plus", 1, "light", False),
        ("ediz_plus", 3, "light", False),
        ("ediz_plus", 4, "moderate", False),
        ("ediz_plus", 8, "moderate", False),
        ("ediz_plus", 9, "heavy", True),
        ("ediz_plus", 15, "heavy", True),
        ("csi", 0, "not_high", False),
        ("csi", 6, "not_high", False),
        ("csi", 7, "high_strain", True),
        ("csi", 13, "high_strain", True),
        ("zbi4", 0, "not_high", False),
        ("zbi4", 7, "not_high", False),
        ("zbi4", 8, "high_burden", True),
        ("zbi4", 16, "high_burden", True),
        ("mcsi", 0, None, False),
        ("mcsi", 26, None, False),
        ("ediz", 0, None, False),
        ("ediz", 9, None, False),
    ],
)
def test_every_band_boundary(instrument_id, total, band, high_burden):
    instrument = CATALOGUE.get(instrument_id)
    score = instrument.score(answers_scoring(instrument, total))
    assert (score.total, score.band, score.high_burden) == (total, band, high_burden)
    assert score.max == instrument.max_score and score.instrument == instrument_id
    assert score.version == instrument.version


@pytest.mark.parametrize("answer,item_score", [(1, 0), (2, 0), (3, 1), (4, 1), (5, 1)])
def test_ediz_counts_more_or_less_yes_and_yes_emphatic(answer, item_score):
    assert CATALOGUE.get("ediz").score([answer] * 9).total == 9 * item_score


def test_contributing_items_are_the_ones_that_added_to_the_score():
    assert CATALOGUE.get("ediz").score([1, 2, 3, 4, 5, 1, 2, 3, 4]).contributing_items == [3, 4, 5, 8, 9]
    assert CATALOGUE.get("mcsi").score([0, 1, 2] + [0] * 10).contributing_items == [2, 3]


def test_the_band_label_comes_with_the_score():
    score = CATALOGUE.get("csi").score([1] * 7 + [0] * 6)
    assert score.band_label_en == "high strain"


@pytest.mark.parametrize(
    "instrument_id,answers,expected",
    [
        ("ediz_plus", [0] * 14, [AnswerError(item=None, message="ediz_plus expects 15 answers, got 14")]),
        ("ediz_plus", [0] * 16, [AnswerError(item=None, message="ediz_plus expects 15 answers, got 16")]),
        (
            "ediz_plus",
            [1, 1, 2] + [0] * 12,
            [AnswerError(item=3, message="ediz_plus item 3: answer 2 is not one of 0, 1")],
        ),
        ("ediz", [0] + [1] * 8, [AnswerError(item=1, message="ediz item 1: answer 0 is not one of 1, 2, 3, 4, 5")]),
        ("zbi4", [0, 0, 0, 5], [AnswerError(item=4, message="zbi4 item 4: answer 5 is not one of 0, 1, 2, 3, 4")]),
        ("mcsi", [0] * 13, []),
    ],
)
def test_validation_names_the_instrument_and_the_item(instrument_id, answers, expected):
    assert CATALOGUE.get(instrument_id).validate_answers(answers) == expected


def test_a_short_list_reports_the_count_and_each_bad_answer():
    errors = CATALOGUE.get("csi").validate_answers([1, 3])
    assert [e.item for e in errors] == [None, 2]


def test_scoring_invalid_answers_raises_with_the_messages():
    with pytest.raises(ValueError, match="csi item 13: answer -1 is not one of 0, 1"):
        CATALOGUE.get("csi").score([0] * 12 + [-1])


# --- properties ----------------------------------------------------------------------

instruments = st.sampled_from(CATALOGUE.all())


@st.composite
def answered(draw):
    instrument = draw(instruments)
    values = instrument.answer_values
    answers = draw(st.lists(st.sampled_from(values), min_size=instrument.item_count, max_size=instrument.item_count))
    return instrument, answers


def _band_rank(instrument: Instrument, band: str | None) -> int:
    return [b.id for b in instrument.bands].index(band) if band else -1


@given(answered(), st.data())
def test_more_burden_on_one_item_never_lowers_the_score(case, data):
    instrument, answers = case
    values = instrument.answer_values
    item = data.draw(st.integers(0, len(answers) - 1))
    position = values.index(answers[item])
    if position + 1 == len(values):
        return  # already the most burdened answer
    heavier = [*answers]
    heavier[item] = values[position + 1]
    before, after = instrument.score(answers), instrument.score(heavier)
    assert after.total >= before.total
    assert _band_rank(instrument, after.band) >= _band_rank(instrument, before.band)
    assert after.high_burden or not before.high_burden
    assert set(before.contributing_items) <= set(after.contributing_items)


@given(answered())
def test_scores_stay_within_range_and_always_have_a_band_when_banded(case):
    instrument, answers = case
    score = instrument.score(answers)
    assert instrument.min_score <= score.total <= instrument.max_score
    assert (score.band is not None) == bool(instrument.bands)


# --- the data files ------------------------------------------------------------------


def test_every_data_file_loads_under_its_own_name():
    files = sorted(p.stem for p in DATA_DIR.glob("*.json"))
    assert files == [i.id for i in CATALOGUE.all()] == ["csi", "ediz", "ediz_plus", "mcsi", "zbi4"]


@pytest.mark.parametrize("instrument", CATALOGUE.all(), ids=lambda i: i.id)
def test_texts_in_dutch_and_english_except_where_licensed(instrument):
    assert instrument.source and instrument.name and instrument.version
    assert all(o.label_nl and o.label_en for o in instrument.answer_scale)
    if instrument.id in LICENSED_TEXTS:
        assert all(i.text_nl is None and i.text_en is None for i in instrument.items)
        assert "Mapi" in instrument.licence_note
    else:
        assert all(i.text_nl and i.text_en for i in instrument.items)


def test_the_default_catalogue_is_read_once():
    assert load_catalogue() is load_catalogue()


def test_the_catalogue_finds_by_id_and_names_the_unknown():
    assert "csi" in CATALOGUE and "zbi22" not in CATALOGUE
    assert CATALOGUE.get("csi").item_count == 13
    with pytest.raises(KeyError, match="zbi22"):
        CATALOGUE.get("zbi22")


# --- a municipality adds an instrument ----------------------------------------------

QUICK: dict[str, Any] = {
    "id": "gm0327_quick",
    "version": "2026.1",
    "name": "Leusden quick check",
    "source": "Gemeente Leusden, own screening questions (2026)",
    "answer_scale": [
        {"value": 0, "label_nl": "nee", "label_en": "no"},
        {"value": 1, "label_nl": "ja", "label_en": "yes"},
    ],
    "items": [{"number": n, "text_nl": f"vraag {n}", "text_en": f"question {n}"} for n in (1, 2, 3)],
    "item_count": 3,
    "min_score": 0,
    "max_score": 3,
    "bands": [
        {"id": "ok", "label_nl": "goed", "label_en": "fine", "lower": 0, "upper": 1},
        {"id": "heavy", "label_nl": "zwaar", "label_en": "heavy", "lower": 2, "upper": 3, "high_burden": True},
    ],
}


def _catalogue_with(tmp_path, definition) -> Catalogue:
    shutil.copytree(DATA_DIR, tmp_path, dirs_exist_ok=True)
    (tmp_path / "extra.json").write_text(json.dumps(definition))
    return load_catalogue(tmp_path)


def test_a_municipality_adds_an_instrument_with_a_file(tmp_path):
    catalogue = _catalogue_with(tmp_path, QUICK)
    assert "gm0327_quick" in catalogue and "ediz_plus" in catalogue
    assert catalogue.get("gm0327_quick").score([1, 1, 0]).band == "heavy"


@pytest.mark.parametrize(
    "change,complaint",
    [
        ({"max_score": 4}, "min_score/max_score must be 0/3"),
        ({"item_count": 4}, "item_count is 4 but 3 items are defined"),
        ({"bands": [{**QUICK["bands"][0], "upper": 0}, QUICK["bands"][1]]}, "band heavy must start at 1"),
        ({"answer_scale": list(reversed(QUICK["answer_scale"]))}, "unique and ascending"),
        ({"scoring": {"answer_scores": {"0": 1, "1": 0}}}, "never score lower"),
        ({"id": "ediz_plus"}, "ediz_plus is defined twice"),
        ({"unexpected": True}, "Extra inputs are not permitted"),
    ],
)
def test_a_broken_file_is_refused_naming_the_file(tmp_path, change, complaint):
    with pytest.raises(ValueError, match=r"extra\.json") as info:
        _catalogue_with(tmp_path, QUICK | change)
    assert complaint in str(info.value)


def test_an_empty_directory_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no instrument definitions"):
        load_catalogue(tmp_path)
