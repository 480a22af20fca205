"""Streaming k-anonymisation, for any sequence of records (hypothesis): every released group
has at least k persons and all its records share its generalised values; a record that
cannot reach k within its delay is suppressed, never released alone; nothing released
depends on who the persons are; and a suppressed record changes neither the stream nor the
statistics, so no suppressed figure can be derived from them."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.municipalities import reports
from services.municipalities.contract import envelope_for, released_group
from services.municipalities.domain import LADDER, Record, generalise, release

K = 10
DELAY = timedelta(minutes=1)
T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)

records = st.builds(
    Record,
    person=st.sampled_from([f"p{i}" for i in range(40)]),
    arrived=st.integers(0, 180).map(lambda s: T0 + timedelta(seconds=s)),
    kind=st.sampled_from(["signal.screened", "matches.proposed"]),
    municipality_code=st.sampled_from(["GM0327", "GM0307"]),
    month=st.just("2026-11"),
    week=st.sampled_from(["2026-W47", "2026-W48"]),
    area=st.sampled_from(["WK032700", "WK032701", "3791", None]),
    age_band=st.sampled_from(["20-29", "60-69", "70-79", None]),
    source_kind=st.sampled_from(["gp", "home_care", "self"]),
    risk_level=st.sampled_from(["at_risk", "overburdened", None]),
    needs=st.sampled_from([(), ("respite_care",), ("emotional_support", "peer_contact")]),
    time_to_support=st.sampled_from([None, "<4h", "1-3d"]),
)
ticks = st.lists(st.integers(0, 300), min_size=1, max_size=4).map(sorted)


def _run(inputs: list[Record], at: list[int]):
    """Feed records in arrival order and release at each tick, as the worker does."""
    waiting: list[Record] = []
    released, suppressed = [], []
    pending = sorted(inputs, key=lambda r: r.arrived)
    for second in at:
        now = T0 + timedelta(seconds=second)
        waiting += [r for r in pending if r.arrived <= now]
        pending = [r for r in pending if r.arrived > now]
        outcome = release(waiting, now, k=K, max_delay=DELAY)
        released += outcome.released
        suppressed += outcome.suppressed
        waiting = outcome.waiting
        assert not [r for r in waiting if r.expired(now, DELAY)], "an expired record left waiting"
    return released, suppressed, waiting


@settings(max_examples=300, deadline=None)
@given(st.lists(records, max_size=80), ticks)
def test_every_released_group_has_k_persons_sharing_its_values(inputs, at):
    released, suppressed, waiting = _run(inputs, at)
    for group in released:
        assert group.persons >= K
        assert all(generalise(m, group.key.level) == group.key for m in group.members)
    # Every record is in exactly one place: released once, suppressed, or still waiting.
    placed = [id(m) for g in released for m in g.members] + [id(r) for r in suppressed + waiting]
    assert sorted(placed) == sorted(id(r) for r in inputs if r.arrived <= T0 + timedelta(seconds=at[-1]))


@settings(max_examples=200, deadline=None)
@given(st.lists(records, max_size=60), st.integers(61, 400))
def test_records_that_cannot_reach_k_in_their_delay_are_suppressed_never_released_alone(inputs, second):
    now = T0 + timedelta(seconds=second)
    outcome = release([r for r in inputs if r.arrived <= now], now, k=K, max_delay=DELAY)
    for record in outcome.suppressed:
        top = generalise(record, len(LADDER) - 1)
        peers = {
            r.person
            for r in inputs
            if r.arrived <= now
            and generalise(r, len(LADDER) - 1) == top
            and r not in [m for g in outcome.released for m in g.members]
        }
        assert len(peers) < K  # even the coarsest group could not reach k
    assert all(g.count >= K for g in outcome.released)


@settings(max_examples=200, deadline=None)
@given(st.lists(records, max_size=60), ticks, st.permutations([f"p{i}" for i in range(40)]))
def test_nothing_released_depends_on_who_the_persons_are(inputs, at, relabel):
    """Renaming every person changes no released value: a released group carries nothing
    that links two records of one person, or a record to anyone."""
    names = dict(zip([f"p{i}" for i in range(40)], relabel, strict=True))
    renamed = [replace(r, person=names[r.person]) for r in inputs]
    one, _, _ = _run(inputs, at)
    two, _, _ = _run(renamed, at)
    assert sorted(released_group(g).model_dump_json() for g in one) == sorted(
        released_group(g).model_dump_json() for g in two
    )
    for group in one:
        body = envelope_for(group, "release-1", "municipalities").model_dump_json()
        assert not any(f'"{m.person}"' in body for m in group.members)
        assert "T09:" not in body  # no arrival time; the envelope's time is the month's first day
        assert json.loads(body)["occurred_at"] == "2026-11-01T00:00:00Z"


@settings(max_examples=200, deadline=None)
@given(st.lists(records, max_size=60), records, st.integers(61, 400))
def test_a_suppressed_record_changes_neither_stream_nor_statistics(inputs, extra, second):
    """So a suppressed figure cannot be derived from the stream and the published tables:
    two worlds that differ by a suppressed record publish exactly the same."""
    now = T0 + timedelta(seconds=second)
    lone = replace(extra, person="someone-else", arrived=T0)
    before = release([r for r in inputs if r.arrived <= now], now, k=K, max_delay=DELAY)
    after = release([*(r for r in inputs if r.arrived <= now), lone], now, k=K, max_delay=DELAY)
    if lone not in after.suppressed:
        return
    published = [[released_group(g).model_dump() for g in o.released] for o in (before, after)]
    assert published[0] == published[1]
    for code in ("GM0327", "GM0307"):
        tables = [
            reports.counts_table(code, [g for g in groups if g["municipality_code"] == code]) for groups in published
        ]
        assert tables[0] == tables[1]


@settings(max_examples=200, deadline=None)
@given(st.lists(records, max_size=80), ticks)
def test_every_figure_counted_from_the_stream_is_zero_or_k(inputs, at):
    released, _, _ = _run(inputs, at)
    groups = [released_group(g).model_dump() for g in released]
    for code in ("GM0327", "GM0307"):
        table = reports.counts_table(code, [g for g in groups if g["municipality_code"] == code])
        for figure in [c for row in table.cells for c in row] + table.row_totals + table.column_totals:
            assert figure.suppressed or figure.value >= K


def test_thirty_similar_records_are_released_at_once_and_three_never():
    similar = Record(
        person="",
        arrived=T0,
        kind="signal.screened",
        municipality_code="GM0327",
        month="2026-11",
        week="2026-W48",
        area="WK032703",
        age_band="80-89",
        source_kind="gp",
        risk_level="overburdened",
        needs=("respite_care",),
    )
    thirty = [replace(similar, person=f"p{i}") for i in range(30)]
    outcome = release(thirty, T0 + timedelta(seconds=3), k=K, max_delay=DELAY)
    assert [(g.key.level, g.count) for g in outcome.released] == [(0, 30)]
    assert outcome.released[0].key.area == "WK032703"
    three = [replace(similar, person=f"p{i}") for i in range(3)]
    assert not release(three, T0 + timedelta(seconds=3), k=K, max_delay=DELAY).released
    late = release(three, T0 + DELAY, k=K, max_delay=DELAY)
    assert not late.released and len(late.suppressed) == 3


def test_an_expiring_record_is_generalised_until_its_group_reaches_k():
    base = Record(
        person="",
        arrived=T0,
        kind="signal.screened",
        municipality_code="GM0327",
        month="2026-11",
        week="2026-W48",
        area="WK032700",
        age_band="60-69",
        source_kind="gp",
        risk_level="overburdened",
    )
    mixed = [replace(base, person=f"a{i}", area="WK032700") for i in range(5)]
    mixed += [
        replace(
            base,
            person=f"b{i}",
            area="WK032701",
            age_band="70-79",
            source_kind="home_care",
            arrived=T0 + timedelta(seconds=30),
        )
        for i in range(5)
    ]
    early = release(mixed, T0 + timedelta(seconds=10), k=K, max_delay=DELAY)
    assert not early.released and not early.suppressed  # nobody expired yet: wait
    late = release(mixed, T0 + DELAY, k=K, max_delay=DELAY)
    (group,) = late.released
    assert group.count == 10 and group.key.area == "GM0327"
    assert (group.key.age_band, group.key.source_kind, group.key.risk_level) == ("60+", "professional", "elevated")


def test_ten_records_of_one_person_are_not_a_group():
    one = Record(
        person="same", arrived=T0, kind="signal.screened", municipality_code="GM0327", month="2026-11", week="2026-W48"
    )
    outcome = release([one] * 12, T0 + DELAY, k=K, max_delay=DELAY)
    assert not outcome.released and len(outcome.suppressed) == 12
