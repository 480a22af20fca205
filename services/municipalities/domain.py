"""Streaming k-anonymisation of the municipalities' records, in the style of CASTLE (Cao,
Carminati, Ferrari, Tan). Pure: no I/O, no clock.

Every record waits in a buffer. At each release tick:

1. Records are grouped on all their attributes at the finest level of the generalisation
   ladder; a group with at least ``k`` different persons is released.
2. For each record whose maximum delay has run out, the ladder is climbed one level at a
   time (district -> municipality, 10-year band -> wide band, ISO week -> month, needs ->
   need groups, ...): the first level at which its group, among all waiting records,
   reaches ``k`` persons releases that whole group, generalised to that level.
3. A record whose delay has run out and that reaches ``k`` at no level is suppressed:
   it is never released alone, and nothing released depends on it.

A released group says how many records it holds and their common, generalised values;
it carries no person, no per-record value and no time finer than its period, so every
record in it is indistinguishable from at least ``k - 1`` others. Unlike CASTLE, a record
is never released on its own under the generalisation of an earlier group: a lone release
would show when that one record arrived.

The ladder below is what a data protection officer reviews, with ``k`` and the delay."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

ANY = "any"

# --- the generalisation hierarchy, per attribute -------------------------------------

SOURCE_GROUPS = {
    "gp": "professional",
    "practice_nurse": "professional",
    "welfare_worker": "professional",
    "neighbourhood_team": "professional",
    "home_care": "professional",
    "resident": "informal",
    "self": "informal",
    "other": "informal",
}
RISK_GROUPS = {
    "in_balance": "not_elevated",
    "at_risk": "not_elevated",
    "overburdened": "elevated",
    "crisis": "elevated",
}
NEED_GROUPS = {
    "information_advice": "guidance",
    "case_management": "guidance",
    "emotional_support": "emotional_and_social",
    "peer_contact": "emotional_and_social",
    "practical_help": "relief",
    "respite_care": "relief",
    "financial_administrative": "money_and_work",
    "work_care_balance": "money_and_work",
    "young_carer_support": "young_carers",
}
# Time to support: fine bands, then coarse ones.
HOURS_BANDS = ((4, "<4h"), (24, "4-24h"), (72, "1-3d"), (168, "3-7d"), (None, "7d+"))
COARSE_HOURS = {"<4h": "<1d", "4-24h": "<1d", "1-3d": "1-7d", "3-7d": "1-7d", "7d+": "7d+"}


def hours_band(hours: float) -> str:
    for limit, label in HOURS_BANDS:
        if limit is None or hours < limit:
            return label
    raise AssertionError("unreachable")


def wide_age_band(band: str) -> str:
    """10-year band -> the target groups of caregiver policy: young, working age, older."""
    low = int(band.rstrip("+").split("-")[0])
    return "<30" if low < 30 else "30-59" if low < 60 else "60+"


def _area(record: Record, level: int) -> str | None:
    return record.area if level == 0 else record.municipality_code


def _period(record: Record, level: int) -> str:
    # A week is cut at the month's edge (it is "this week, in this month"), so that every
    # week-level group lies inside one month and month statistics can count it.
    return record.week if level == 0 else record.month


def _mapped(mapping: dict[str, str]) -> Callable[[str | None, int], str | None]:
    def generalise(value: str | None, level: int) -> str | None:
        if value is None:
            return None
        return value if level == 0 else mapping.get(value, ANY) if level == 1 else ANY

    return generalise


def _age(value: str | None, level: int) -> str | None:
    if value is None:
        return None
    return value if level == 0 else wide_age_band(value) if level == 1 else ANY


def _needs(value: tuple[str, ...], level: int) -> tuple[str, ...]:
    if level == 0:
        return value
    if level == 1:
        return tuple(sorted({NEED_GROUPS.get(n, ANY) for n in value}))
    return (ANY,) if value else ()


def _time(value: str | None, level: int) -> str | None:
    return value if value is None or level == 0 else COARSE_HOURS[value]


def _categories(value: tuple[str, ...], level: int) -> tuple[str, ...]:
    return value if level == 0 else (ANY,) if value else ()


def _reason(value: str | None, level: int) -> str | None:
    return value if level == 0 or value is None else ANY


_SOURCE = _mapped(SOURCE_GROUPS)
_RISK = _mapped(RISK_GROUPS)

# Levels per attribute at each rung of the ladder; every rung is at least as coarse as the
# one before, on every attribute. What a record says about the outcome (referral status,
# support arrived, no-match reason) stays: it is what the municipality needs to know.
_LADDER_ATTRIBUTES = (
    "area",
    "period",
    "age_band",
    "source_kind",
    "risk_level",
    "needs",
    "service_categories",
    "time_to_support",
    "rejection_reason",
)
LADDER: tuple[dict[str, int], ...] = tuple(
    dict(zip(_LADDER_ATTRIBUTES, levels, strict=True))
    for levels in (
        # area, period, age band, source kind, risk level, needs, categories, time to support, reason
        (0, 0, 0, 0, 0, 0, 0, 0, 0),
        (1, 0, 1, 1, 1, 1, 1, 1, 0),
        (1, 1, 1, 1, 1, 1, 1, 1, 1),
        (1, 1, 2, 2, 2, 2, 1, 1, 1),
    )
)


# --- records and groups --------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One anonymous record, derived from one pipeline event, waiting for release.

    ``person`` (an opaque token, so a group counts persons, not records) and ``arrived``
    (for the delay) are held only while the record waits: they are never released."""

    person: str
    arrived: datetime
    kind: str  # the pipeline event it comes from, e.g. "signal.screened"
    municipality_code: str
    month: str  # "2026-11"
    week: str  # "2026-W48", cut at the month's edge
    area: str | None = None  # CBS district, else PC4
    age_band: str | None = None
    source_kind: str | None = None
    risk_level: str | None = None
    needs: tuple[str, ...] = ()
    service_categories: tuple[str, ...] = ()
    no_match_reason: str | None = None
    time_to_support: str | None = None  # an hours band
    referral_status: str | None = None
    rejection_reason: str | None = None
    support_arrived: bool | None = None

    def expired(self, now: datetime, max_delay: timedelta) -> bool:
        return self.arrived + max_delay <= now


@dataclass(frozen=True)
class GroupKey:
    """The values every record of a released group shares, generalised to ``level``."""

    level: int
    kind: str
    municipality_code: str
    month: str
    period: str  # the week (in the month) at level 0, else the month
    area: str | None
    age_band: str | None
    source_kind: str | None
    risk_level: str | None
    needs: tuple[str, ...]
    service_categories: tuple[str, ...]
    no_match_reason: str | None
    time_to_support: str | None
    referral_status: str | None
    rejection_reason: str | None
    support_arrived: bool | None


def generalise(record: Record, level: int) -> GroupKey:
    rung = LADDER[level]
    return GroupKey(
        level=level,
        kind=record.kind,
        municipality_code=record.municipality_code,
        month=record.month,
        period=_period(record, rung["period"]),
        area=_area(record, rung["area"]),
        age_band=_age(record.age_band, rung["age_band"]),
        source_kind=_SOURCE(record.source_kind, rung["source_kind"]),
        risk_level=_RISK(record.risk_level, rung["risk_level"]),
        needs=_needs(record.needs, rung["needs"]),
        service_categories=_categories(record.service_categories, rung["service_categories"]),
        no_match_reason=record.no_match_reason,
        time_to_support=_time(record.time_to_support, rung["time_to_support"]),
        referral_status=record.referral_status,
        rejection_reason=_reason(record.rejection_reason, rung["rejection_reason"]),
        support_arrived=record.support_arrived,
    )


@dataclass(frozen=True)
class Group:
    key: GroupKey
    members: tuple[Record, ...]

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def persons(self) -> int:
        return len({m.person for m in self.members})


@dataclass(frozen=True)
class Outcome:
    """What one release tick decides; every record given is in exactly one of the three."""

    released: list[Group] = field(default_factory=list)
    suppressed: list[Record] = field(default_factory=list)
    waiting: list[Record] = field(default_factory=list)


def _by_key(records: Iterable[Record], level: int) -> dict[GroupKey, list[Record]]:
    groups: dict[GroupKey, list[Record]] = defaultdict(list)
    for record in records:
        groups[generalise(record, level)].append(record)
    return groups


def release(records: Sequence[Record], now: datetime, *, k: int, max_delay: timedelta) -> Outcome:
    """Decide, for the records waiting at ``now``, which groups go out and which records
    are suppressed. Deterministic: the same records give the same groups."""
    waiting = sorted(records, key=lambda r: (r.arrived, r.person, repr(r)))
    released: list[Group] = []

    def take(level: int, wanted: Callable[[list[Record]], bool]) -> None:
        nonlocal waiting
        taken: set[int] = set()
        for key, members in _by_key(waiting, level).items():
            if len({m.person for m in members}) >= k and wanted(members):
                released.append(Group(key, tuple(members)))
                taken.update(id(m) for m in members)
        waiting = [r for r in waiting if id(r) not in taken]

    take(0, lambda members: True)
    for level in range(1, len(LADDER)):
        if not any(r.expired(now, max_delay) for r in waiting):
            break
        take(level, lambda members: any(m.expired(now, max_delay) for m in members))
    suppressed = [r for r in waiting if r.expired(now, max_delay)]
    # In an order that says nothing about which records arrived first.
    released.sort(key=lambda g: repr(g.key))
    return Outcome(
        released=released, suppressed=suppressed, waiting=[r for r in waiting if not r.expired(now, max_delay)]
    )


# --- what the stream and its webhooks hold (the repository returns these) -------------


@dataclass(frozen=True)
class StreamEvent:
    """A released group in its municipality's stream: its sequence number and JSON envelope."""

    seq: int
    body: str


@dataclass(frozen=True)
class Webhook:
    """A municipality's webhook as the municipality sees it (never its secret)."""

    id: UUID
    url: str
    delivered_seq: int
    attempts: int
    last_error: str | None
    created_at: datetime


@dataclass(frozen=True)
class DueWebhook:
    """A webhook leased for one delivery round."""

    id: UUID
    municipality_code: str
    url: str
    secret: str
    delivered_seq: int
    attempts: int
