"""The statistics a municipality can ask for, built from its anonymous facts: counts per
month x district x source kind x risk level, and time-to-support percentiles per month.

Each month is its own table, with the same rows and columns whatever the data (every
district of the municipality plus ``unknown``; every source kind x risk level, including
``unscreened``), so a missing row or column never tells anything."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel

from services.signals.municipalities.districts import UNKNOWN_DISTRICT, districts_of
from services.signals.municipalities.statistics import (
    ROUNDING_BASE,
    THRESHOLD,
    Percentiles,
    Record,
    Table,
    percentiles,
    tabulate,
)
from shared.contracts import RiskLevel, SourceKind

UNSCREENED = "unscreened"
COLUMNS = [f"{s.value}/{r}" for s in SourceKind for r in [*(r.value for r in RiskLevel), UNSCREENED]]


class MonthCounts(BaseModel):
    month: str
    table: Table


class CountsReport(BaseModel):
    municipality_code: str
    unit: str = "signals; cells with fewer than 10 persons behind them are suppressed"
    threshold: int = THRESHOLD
    rounded_to: int = ROUNDING_BASE
    rows: str = "CBS district (wijk); 'unknown' for a postcode outside the municipality's districts or none"
    columns: str = "source kind / risk level"
    months: list[MonthCounts]


class MonthTimes(BaseModel):
    month: str
    to_match: Percentiles
    to_first_contact: Percentiles


class TimeToSupportReport(BaseModel):
    municipality_code: str
    unit: str = "hours from the signal; percentiles only with at least 10 persons"
    months: list[MonthTimes]


def months_between(first: date, last: date) -> list[date]:
    months, month = [], first
    while month <= last:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return months


def counts_report(municipality_code: str, months: Sequence[date], facts: Sequence[dict[str, Any]]) -> CountsReport:
    districts = districts_of(municipality_code)
    rows = [*districts, UNKNOWN_DISTRICT]

    def record(fact: dict[str, Any]) -> Record:
        known = fact["area_kind"] == "wijk" and fact["area_code"] in districts
        district = fact["area_code"] if known else UNKNOWN_DISTRICT
        return Record(row=district, column=f"{fact['source_kind']}/{fact['risk_level'] or UNSCREENED}",
                      person=fact["person"])

    return CountsReport(municipality_code=municipality_code, months=[
        MonthCounts(month=f"{m:%Y-%m}",
                    table=tabulate([record(f) for f in facts if f["received_month"] == m], rows, COLUMNS))
        for m in months
    ])


def time_to_support_report(
    municipality_code: str, months: Sequence[date], facts: Sequence[dict[str, Any]],
) -> TimeToSupportReport:
    def observed(month: date, field: str) -> Percentiles:
        return percentiles([(f[field], f["person"]) for f in facts
                            if f["received_month"] == month and f[field] is not None])

    return TimeToSupportReport(municipality_code=municipality_code, months=[
        MonthTimes(month=f"{m:%Y-%m}", to_match=observed(m, "hours_to_match"),
                   to_first_contact=observed(m, "hours_to_first_contact"))
        for m in months
    ])
