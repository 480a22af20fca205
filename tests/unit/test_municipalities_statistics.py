"""Statistics: no published figure rests on fewer than 10 persons, every figure is a
multiple of 5, no suppressed figure can be recomputed from the published ones, only closed
months are answered, and the outcome measures are computed from released groups.

The recomputation check is independent of the implementation (which reasons about cycles
in a graph): it writes the table's row and column equations as a linear system and asks,
by exact rank computation, whether any suppressed entry is determined by it. It assumes
the worst case, that the attacker knows every published figure unrounded."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from services.municipalities import reports
from services.municipalities.statistics import Cell, Record, Table, round_count, tabulate


def _records(counts: list[list[int]], shared_people: bool = False) -> list[Record]:
    records = []
    for i, row in enumerate(counts):
        for j, n in enumerate(row):
            for k in range(n):
                # With shared people, one person may have several signals in several cells.
                person = f"p{(i * 7 + j * 3 + k) % 13}" if shared_people else f"{i}.{j}.{k}"
                records.append(Record(f"r{i}", f"c{j}", person))
    return records


def _grid(table: Table):
    """The published table as a (rows + 1) x (columns + 1) grid, totals last."""
    grid = [[*row, total] for row, total in zip(table.cells, table.row_totals, strict=True)]
    return [*grid, [*table.column_totals, table.total]]


def _rank(rows: list[list[Fraction]]) -> int:
    rows = [r[:] for r in rows]
    rank, columns = 0, len(rows[0]) if rows else 0
    for c in range(columns):
        pivot = next((r for r in range(rank, len(rows)) if rows[r][c] != 0), None)
        if pivot is None:
            continue
        rows[rank], rows[pivot] = rows[pivot], rows[rank]
        for r in range(len(rows)):
            if r != rank and rows[r][c] != 0:
                factor = rows[r][c] / rows[rank][c]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[rank], strict=True)]
        rank += 1
    return rank


def recomputable(table: Table) -> list[tuple[int, int]]:
    """Suppressed entries the published figures and the table's sums determine exactly."""
    grid = _grid(table)
    last_row, last_column = len(grid) - 1, len(grid[0]) - 1
    unknown = [(i, j) for i in range(last_row + 1) for j in range(last_column + 1) if grid[i][j].suppressed]
    if not unknown:
        return []
    lines = [[((i, j), -1 if j == last_column else 1) for j in range(last_column + 1)] for i in range(last_row + 1)]
    lines += [[((i, j), -1 if i == last_row else 1) for i in range(last_row + 1)] for j in range(last_column + 1)]
    system = [[Fraction(dict(line).get(e, 0)) for e in unknown] for line in lines]
    base = _rank(system)
    determined = []
    for k, entry in enumerate(unknown):
        probe = [Fraction(int(k == m)) for m in range(len(unknown))]
        if _rank([*system, probe]) == base:
            determined.append(entry)
    return determined


def _published(table: Table) -> list:
    return [cell for row in _grid(table) for cell in row]


matrices = st.integers(1, 5).flatmap(
    lambda rows: st.integers(1, 5).flatmap(
        lambda columns: st.lists(
            st.lists(st.one_of(st.integers(0, 12), st.integers(0, 60)), min_size=columns, max_size=columns),
            min_size=rows,
            max_size=rows,
        )
    )
)


@settings(max_examples=300, deadline=None)
@given(matrices, st.booleans())
def test_no_published_figure_is_small_or_recomputable(counts, shared_people):
    records = _records(counts, shared_people)
    table = tabulate(records, [f"r{i}" for i in range(len(counts))], [f"c{j}" for j in range(len(counts[0]))])
    for cell in _published(table):
        assert cell.suppressed == (cell.value is None)
        if not cell.suppressed:
            assert cell.value >= 10 and cell.value % 5 == 0
    assert recomputable(table) == []


@settings(max_examples=200, deadline=None)
@given(matrices, st.booleans())
def test_published_figures_are_the_rounded_counts_of_at_least_ten_persons(counts, shared_people):
    records = _records(counts, shared_people)
    rows, columns = [f"r{i}" for i in range(len(counts))], [f"c{j}" for j in range(len(counts[0]))]
    table = tabulate(records, rows, columns)
    for i, row in enumerate(table.cells):
        for j, cell in enumerate(row):
            inside = [r for r in records if r.row == rows[i] and r.column == columns[j]]
            if not cell.suppressed:
                assert len({r.person for r in inside}) >= 10
                assert cell.value == round_count(len(inside))
    if not table.total.suppressed:
        assert table.total.value == round_count(len(records))


def test_a_lone_small_cell_takes_its_smallest_neighbours_with_it():
    table = tabulate(_records([[3, 40, 50], [20, 30, 60], [25, 35, 45]]), ["r0", "r1", "r2"], ["c0", "c1", "c2"])
    hidden = {(i, j) for i, row in enumerate(table.cells) for j, c in enumerate(row) if c.suppressed}
    # Row 0 and column 0 each need a second suppression; the smallest candidates complete a cycle.
    assert hidden == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert not any(c.suppressed for c in [*table.row_totals, *table.column_totals, table.total])
    assert table.cells[2][2].value == 45 and table.cells[0][2].value == 50


def test_a_bridge_between_two_protected_blocks_is_protected_too():
    # Two blocks of small cells, each protected by its rows and columns, joined by one small
    # cell: every line has at least two suppressions, yet that cell is the difference of the
    # sums of one block's rows and columns. Counting suppressions per line misses it.
    big = 50
    counts = [[3, 4, big, big], [5, 6, 7, big], [big, big, 3, 4], [big, big, 5, 6]]
    table = tabulate(_records(counts), [f"r{i}" for i in range(4)], [f"c{j}" for j in range(4)])
    assert recomputable(table) == []
    hidden = {(i, j) for i, row in enumerate(table.cells) for j, c in enumerate(row) if c.suppressed}
    assert {(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 2), (2, 3), (3, 2), (3, 3)} < hidden


def test_few_persons_behind_many_signals_are_still_suppressed():
    records = [Record("r0", "c0", f"p{k % 3}") for k in range(30)] + [Record("r0", "c1", f"q{k}") for k in range(30)]
    table = tabulate(records, ["r0"], ["c0", "c1"])
    assert table.cells[0][0].suppressed and table.cells[0][1].suppressed  # the second protects the first
    assert table.row_totals[0].value == 60


def test_rounding_is_to_the_nearest_multiple_of_five():
    assert [round_count(n) for n in (10, 11, 12, 13, 14, 15, 17, 18)] == [10, 10, 10, 15, 15, 15, 15, 20]


def _group(record: str = "signal.screened", count: int = 12, level: int = 0, month: str = "2026-10", **values) -> dict:
    return {
        "record": record,
        "count": count,
        "level": level,
        "month": month,
        "municipality_code": "GM0327",
        "area": "WK032701",
        "source_kind": "gp",
        "risk_level": "overburdened",
        "age_band": "60-69",
        "needs": ["respite_care"],
        "no_match_reason": None,
        "time_to_support": None,
        "referral_status": None,
        "support_arrived": None,
        **values,
    }


def test_every_month_has_the_same_rows_and_columns_whatever_the_groups():
    october = reports.counts_table("GM0327", [_group(), _group(level=2, area="GM0327", source_kind="professional")])
    empty = reports.counts_table("GM0327", [])
    assert october.rows == empty.rows == ["WK032700", "WK032701", "WK032702", "WK032703", "generalised"]
    assert october.columns == empty.columns == reports.COLUMNS
    assert "gp/unscreened" in reports.COLUMNS and len(reports.COLUMNS) == 8 * 5 + 1
    cell = october.cells[1][reports.COLUMNS.index("gp/overburdened")]
    assert (cell.value, cell.suppressed) == (10, False)  # twelve, rounded
    assert october.cells[4][-1] == Cell(value=10, suppressed=False)  # the generalised group
    assert october.total.value == 25
    assert all(c.suppressed for row in empty.cells for c in row)


def test_only_closed_months_are_answered():
    delay = timedelta(days=7)
    assert not reports.closed(date(2026, 11, 1), datetime(2026, 12, 7, 23, tzinfo=UTC), delay)
    assert reports.closed(date(2026, 11, 1), datetime(2026, 12, 8, tzinfo=UTC), delay)


def test_outcomes_of_a_month():
    groups = [
        _group("matches.proposed", 12, time_to_support="<4h"),
        _group("matches.proposed", 11, time_to_support="1-3d"),
        _group("matches.proposed", 10, no_match_reason="no_capacity"),
        _group("referral.updated", 14, referral_status="accepted", time_to_support="4-24h"),
        _group("referral.updated", 10, referral_status="rejected"),
        _group("followup.recorded", 10, support_arrived=True),
        _group(count=20),
        _group(count=10, level=3, age_band="any", needs=["any"]),
    ]
    month = reports.outcomes("2026-10", groups, ["no_capacity", "needs_not_covered"])
    assert (month.time_to_match.n.value, month.time_to_match.p50, month.time_to_match.p90) == (25, "<1d", "1-7d")
    assert month.time_to_accepted_referral.n.value == 15 and month.time_to_accepted_referral.p50 == "<1d"
    assert month.referrals_accepted.share == round(14 / 24, 2)
    assert month.support_arrived.no.suppressed and month.support_arrived.share is None  # no 'no' group
    assert month.no_match_reasons["no_capacity"].value == 10 and month.no_match_reasons["needs_not_covered"].suppressed
    assert month.target_groups["60+"].value == 20 and month.target_groups["generalised"].value == 10
    assert month.target_groups["<30"].suppressed
    assert month.need_groups["relief"].value == 20
