"""The statistics a municipality can ask for, computed from its released groups only, over
closed months only. Pure.

Computed from what was released, the tables can never tell more than the stream: every
figure is a sum of whole groups, so it is 0 or rests on at least k persons, and the CBS
rules (``statistics``: under 10 suppressed, rounded to 5, secondary suppression) hide the
rest. A record that was suppressed is in neither, so no suppressed cell can be recomputed
from the stream and the tables together. A month is closed once its last record's delay
has run out: after that its answer never changes, so comparing answers over time tells
nothing either.

Each month is its own table with the same rows and columns whatever the data, so a missing
row or column never tells anything."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from services.municipalities.districts import districts_of
from services.municipalities.domain import ANY, COARSE_HOURS, HOURS_BANDS, NEED_GROUPS, wide_age_band
from services.municipalities.records import NO_MATCH_REASONS
from services.municipalities.statistics import ROUNDING_BASE, THRESHOLD, Cell, Record, Table, shown, tabulate
from shared.contracts import ReferralStatus, RiskLevel, SourceKind

GENERALISED = "generalised"  # row and column of the groups released coarser than the table
UNSCREENED = "unscreened"
COLUMNS = [*(f"{s.value}/{r}" for s in SourceKind for r in [*(r.value for r in RiskLevel), UNSCREENED]), GENERALISED]
TIME_BANDS = list(dict.fromkeys(COARSE_HOURS.values()))
TARGET_GROUPS = ["<30", "30-59", "60+", GENERALISED]
NEED_GROUP_NAMES = sorted(set(NEED_GROUPS.values()))
Released = dict[str, Any]  # a released group's payload, as in the stream
# The released groups of each closed month ("2026-11"), and the months still open.
ClosedMonths = tuple[dict[str, list[Released]], list[str]]


def months_between(first: date, last: date) -> list[date]:
    months, month = [], first
    while month <= last:
        months.append(month)
        month = _next_month(month)
    return months


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def closed(month: date, now: datetime, max_delay: timedelta) -> bool:
    """No record of the month can still be released: its last one's delay has run out."""
    end = _next_month(month)
    return datetime(end.year, end.month, 1, tzinfo=UTC) + max_delay <= now


def _persons(groups: Iterable[tuple[str, str, Released]]) -> list[Record]:
    # A group's records are of at least k different persons; counting each record as its
    # own person never makes a figure look safer than it is, since every figure holds whole
    # groups (0, or at least k persons).
    return [
        Record(row=row, column=column, person=f"{n}:{i}")
        for n, (row, column, group) in enumerate(groups)
        for i in range(group["count"])
    ]


def _of(groups: Sequence[Released], kind: str) -> list[Released]:
    return [g for g in groups if g["record"] == kind]


def _count(groups: Iterable[Released]) -> Cell:
    groups = list(groups)
    total = sum(g["count"] for g in groups)
    return shown(total, total)


class MonthCounts(BaseModel):
    month: str
    table: Table


class CountsReport(BaseModel):
    municipality_code: str
    unit: str = "screened signals released in k-anonymous groups; figures on fewer than 10 persons suppressed"
    threshold: int = THRESHOLD
    rounded_to: int = ROUNDING_BASE
    rows: str = f"CBS district (wijk); '{GENERALISED}' for groups released for the whole municipality"
    columns: str = f"source kind / risk level; '{GENERALISED}' for groups released with coarser values"
    months: list[MonthCounts]
    open_months: list[str] = []


def counts_report(municipality_code: str, closed: ClosedMonths) -> CountsReport:
    by_month, still_open = closed
    months = [MonthCounts(month=m, table=counts_table(municipality_code, groups)) for m, groups in by_month.items()]
    return CountsReport(municipality_code=municipality_code, open_months=still_open, months=months)


def counts_table(municipality_code: str, groups: Sequence[Released]) -> Table:
    rows = [*districts_of(municipality_code), GENERALISED]

    def cell(group: Released) -> tuple[str, str, Released]:
        if group["level"] == 0:
            row = group["area"] if group["area"] in rows else GENERALISED
            return row, f"{group['source_kind']}/{group['risk_level'] or UNSCREENED}", group
        return GENERALISED, GENERALISED, group

    return tabulate(_persons(cell(g) for g in _of(groups, "signal.screened")), rows, COLUMNS)


class Bands(BaseModel):
    """Percentiles as hours bands (the stream's own resolution), only on 10 persons or more."""

    n: Cell
    p50: str | None = None
    p75: str | None = None
    p90: str | None = None


def band_percentiles(groups: Sequence[Released]) -> Bands:
    timed = [g for g in groups if g.get("time_to_support")]
    n = _count(timed)
    if n.suppressed:
        return Bands(n=n)
    order = [COARSE_HOURS[label] for _, label in HOURS_BANDS]
    values = sorted(
        (COARSE_HOURS.get(g["time_to_support"]) or g["time_to_support"] for g in timed for _ in range(g["count"])),
        key=order.index,
    )

    def at(q: float) -> str:
        return values[min(len(values) - 1, int(q * len(values)))]

    return Bands(n=n, p50=at(0.5), p75=at(0.75), p90=at(0.9))


class Share(BaseModel):
    yes: Cell
    no: Cell
    share: float | None = None  # only when neither figure is suppressed


def share(yes: Sequence[Released], no: Sequence[Released]) -> Share:
    a, b = _count(yes), _count(no)
    if a.suppressed or b.suppressed:
        return Share(yes=a, no=b)
    total = sum(g["count"] for g in [*yes, *no])
    return Share(yes=a, no=b, share=round(sum(g["count"] for g in yes) / total, 2))


class MonthOutcomes(BaseModel):
    month: str
    time_to_match: Bands
    time_to_accepted_referral: Bands
    referrals_accepted: Share
    support_arrived: Share
    no_match_reasons: dict[str, Cell]
    target_groups: dict[str, Cell]
    need_groups: dict[str, Cell]


class OutcomesReport(BaseModel):
    municipality_code: str
    unit: str = (
        "records released in k-anonymous groups; figures on fewer than 10 persons suppressed, "
        "shown figures rounded to 5, shares only when both figures are shown"
    )
    months: list[MonthOutcomes]
    open_months: list[str] = []


ACCEPTED = {ReferralStatus.ACCEPTED.value, ReferralStatus.IN_PROGRESS.value, ReferralStatus.COMPLETED.value}
NOT_ACCEPTED = {ReferralStatus.REJECTED.value, ReferralStatus.FAILED.value, ReferralStatus.CANCELLED.value}


def outcomes_report(municipality_code: str, closed: ClosedMonths) -> OutcomesReport:
    by_month, still_open = closed
    months = [outcomes(m, groups, sorted(set(NO_MATCH_REASONS.values()))) for m, groups in by_month.items()]
    return OutcomesReport(municipality_code=municipality_code, open_months=still_open, months=months)


def outcomes(month: str, groups: Sequence[Released], no_match_reasons: Sequence[str]) -> MonthOutcomes:
    screened, matched = _of(groups, "signal.screened"), _of(groups, "matches.proposed")
    referrals, follow_ups = _of(groups, "referral.updated"), _of(groups, "followup.recorded")

    def target_group(group: Released) -> str:
        band = group.get("age_band")
        return GENERALISED if band in (None, ANY) else band if band in TARGET_GROUPS else wide_age_band(band)

    def need_groups(group: Released) -> set[str]:
        return {NEED_GROUPS.get(n, n) for n in group.get("needs", [])}

    return MonthOutcomes(
        month=month,
        time_to_match=band_percentiles(matched),
        time_to_accepted_referral=band_percentiles(referrals),
        referrals_accepted=share(
            [g for g in referrals if g["referral_status"] in ACCEPTED],
            [g for g in referrals if g["referral_status"] in NOT_ACCEPTED],
        ),
        support_arrived=share(
            [g for g in follow_ups if g["support_arrived"] is True],
            [g for g in follow_ups if g["support_arrived"] is False],
        ),
        no_match_reasons={r: _count(g for g in matched if g["no_match_reason"] == r) for r in no_match_reasons},
        target_groups={t: _count(g for g in screened if target_group(g) == t) for t in TARGET_GROUPS},
        need_groups={n: _count(g for g in screened if n in need_groups(g)) for n in NEED_GROUP_NAMES},
    )
