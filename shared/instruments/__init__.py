"""Caregiver-burden instruments as versioned data, and how to check and score answers.

Each instrument is one JSON file in ``data/``: items, answer scale, scoring rule, score
bands and the source it comes from. A municipality adds an instrument by adding a file;
the models below refuse a file whose numbers do not add up (bands with gaps, a maximum
that the items cannot reach), so a mistake fails at load time rather than in a score.

Answers are item positions 1..n in the instrument's own order; an answer is a value from
the answer scale, and higher values always mean more burden (checked on load).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DATA_DIR = Path(__file__).parent / "data"


class _Data(BaseModel):
    # Typos in a hand-written file must fail loudly, not vanish.
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnswerOption(_Data):
    value: int
    label_nl: str
    label_en: str


class Item(_Data):
    number: int = Field(ge=1)
    # None where the wording is licensed (ZBI-4): the project scores it but never shows it.
    text_nl: str | None = None
    text_en: str | None = None


class Scoring(_Data):
    method: Literal["sum"] = "sum"
    # Answer value -> item score; without it an item scores its answer value.
    answer_scores: dict[int, int] | None = None
    note: str | None = None

    def item_score(self, answer: int) -> int:
        return self.answer_scores[answer] if self.answer_scores is not None else answer


class Band(_Data):
    id: str
    label_nl: str
    label_en: str
    lower: int
    upper: int  # inclusive
    high_burden: bool = False
    # Burden is clearly present but below the high-burden cut-off (EDIZ-plus "moderate").
    elevated: bool = False

    def contains(self, total: int) -> bool:
        return self.lower <= total <= self.upper


class AnswerError(BaseModel):
    model_config = ConfigDict(frozen=True)

    item: int | None  # 1-based item number; None when the number of answers is wrong
    message: str


class InstrumentScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    instrument: str
    version: str
    total: int
    max: int
    band: str | None
    band_label_en: str | None
    high_burden: bool
    contributing_items: list[int]


class Instrument(_Data):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    version: str
    name: str
    full_name: str | None = None
    source: str
    licence_note: str | None = None
    answer_scale: list[AnswerOption] = Field(min_length=2)
    items: list[Item] = Field(min_length=1)
    item_count: int
    scoring: Scoring = Scoring()
    min_score: int
    max_score: int
    bands: list[Band] = []
    cutoff_note: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Instrument:
        problems = [*self._check_items(), *self._check_scale(), *self._check_bands()]
        if problems:
            raise ValueError(f"instrument {self.id}: " + "; ".join(problems))
        return self

    def _check_items(self) -> list[str]:
        numbers = [item.number for item in self.items]
        problems = []
        if self.item_count != len(self.items):
            problems.append(f"item_count is {self.item_count} but {len(self.items)} items are defined")
        if numbers != list(range(1, len(numbers) + 1)):
            problems.append("items must be numbered 1, 2, 3, ... in order")
        return problems

    def _check_scale(self) -> list[str]:
        values = self.answer_values
        if values != sorted(set(values)):
            return ["answer_scale values must be unique and ascending (more burden last)"]
        mapping = self.scoring.answer_scores
        if mapping is not None and set(mapping) != set(values):
            return ["scoring.answer_scores must give a score for every answer value, and only those"]
        scores = [self.scoring.item_score(v) for v in values]
        if scores != sorted(scores):
            return ["a higher answer must never score lower than a lower one"]
        expected = (len(self.items) * scores[0], len(self.items) * scores[-1])
        if (self.min_score, self.max_score) != expected:
            return [f"min_score/max_score must be {expected[0]}/{expected[1]} for these items and scoring"]
        return []

    def _check_bands(self) -> list[str]:
        if not self.bands:
            return []
        problems = []
        if len({b.id for b in self.bands}) != len(self.bands):
            problems.append("band ids must be unique")
        if any(b.high_burden and b.elevated for b in self.bands):
            problems.append("a band is either high_burden or elevated, not both")
        edges = [self.min_score - 1]
        for band in self.bands:
            if band.lower != edges[-1] + 1 or band.upper < band.lower:
                problems.append(f"band {band.id} must start at {edges[-1] + 1} and not end before it starts")
            edges.append(band.upper)
        if edges[-1] != self.max_score:
            problems.append(f"bands must end at max_score {self.max_score}")
        return problems

    @property
    def answer_values(self) -> list[int]:
        return [option.value for option in self.answer_scale]

    def band_for(self, total: int) -> Band | None:
        return next((band for band in self.bands if band.contains(total)), None)

    def validate_answers(self, answers: list[int]) -> list[AnswerError]:
        """Every problem with ``answers``; an empty list means they can be scored."""
        errors = []
        if len(answers) != self.item_count:
            errors.append(
                AnswerError(item=None, message=f"{self.id} expects {self.item_count} answers, got {len(answers)}")
            )
        allowed = self.answer_values
        allowed_text = ", ".join(str(v) for v in allowed)
        for number, answer in enumerate(answers[: self.item_count], start=1):
            if answer not in allowed:
                errors.append(
                    AnswerError(
                        item=number, message=f"{self.id} item {number}: answer {answer} is not one of {allowed_text}"
                    )
                )
        return errors

    def score(self, answers: list[int]) -> InstrumentScore:
        if errors := self.validate_answers(answers):
            raise ValueError("; ".join(e.message for e in errors))
        item_scores = [self.scoring.item_score(a) for a in answers]
        total = sum(item_scores)
        band = self.band_for(total)
        # An item "contributes" when it scores above the scale's floor (the least-burden answer).
        floor = self.scoring.item_score(self.answer_values[0])
        return InstrumentScore(
            instrument=self.id,
            version=self.version,
            total=total,
            max=self.max_score,
            band=band.id if band else None,
            band_label_en=band.label_en if band else None,
            high_burden=band.high_burden if band else False,
            contributing_items=[n for n, s in enumerate(item_scores, start=1) if s > floor],
        )


class Catalogue:
    """The instruments known to the pipeline, by id."""

    def __init__(self, instruments: list[Instrument]) -> None:
        self._by_id: dict[str, Instrument] = {}
        for instrument in instruments:
            if instrument.id in self._by_id:
                raise ValueError(f"instrument {instrument.id} is defined twice")
            self._by_id[instrument.id] = instrument

    def get(self, instrument_id: str) -> Instrument:
        try:
            return self._by_id[instrument_id]
        except KeyError:
            raise KeyError(f"unknown instrument {instrument_id!r}; known: {', '.join(sorted(self._by_id))}") from None

    def __contains__(self, instrument_id: object) -> bool:
        return instrument_id in self._by_id

    def all(self) -> list[Instrument]:
        return [self._by_id[key] for key in sorted(self._by_id)]


def _read(path: Path) -> Instrument:
    try:
        return Instrument.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except ValueError as exc:  # JSON and validation errors alike: name the file
        raise ValueError(f"{path.name}: {exc}") from exc


def _load(directory: Path) -> Catalogue:
    paths = sorted(directory.glob("*.json"))
    if not paths:
        raise ValueError(f"no instrument definitions (*.json) in {directory}")
    files: dict[str, str] = {}
    instruments = []
    for path in paths:
        instrument = _read(path)
        if instrument.id in files:
            raise ValueError(
                f"{path.name}: instrument {instrument.id} is defined twice (also in {files[instrument.id]})"
            )
        files[instrument.id] = path.name
        instruments.append(instrument)
    return Catalogue(instruments)


@cache
def _default_catalogue() -> Catalogue:
    return _load(DATA_DIR)


def load_catalogue(directory: Path | None = None) -> Catalogue:
    """Every ``*.json`` in ``directory`` (default: the packaged ``data/``, read once)."""
    return _default_catalogue() if directory is None else _load(directory)
