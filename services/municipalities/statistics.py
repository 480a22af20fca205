"""Statistics a municipality may see: cross-tables with primary and secondary suppression,
and rounded counts. Pure functions.

- Primary suppression: a cell, row total, column total or grand total with fewer than 10
  persons behind it is suppressed (shown as suppressed, never as 0).
- Rounding: shown counts are rounded to the nearest multiple of 5. Deterministically (13 ->
  15, 12 -> 10), so asking again gives the same answer; random rounding (as CBS does) would
  average out over repeated queries unless its seed were kept per cell.
- Secondary suppression: the table with its totals is a system of linear equations (each
  row and column sums to its total). A suppressed entry can be recomputed exactly when it
  is a bridge of the graph whose nodes are the table's lines and whose edges are the
  suppressed entries; on a cycle it cannot. So: while a line has exactly one suppressed
  entry, suppress its next-smallest entry too; then, while some suppressed entry is still a
  bridge, suppress the smallest entry that closes a cycle through it. Repeat to a fixed
  point. Totals are computed from the unrounded data and go through the same rules."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

THRESHOLD = 10  # persons; CBS remote-access output uses the same
ROUNDING_BASE = 5


@dataclass(frozen=True)
class Record:
    """One signal: which cell it falls in and whose it is (so a cell counts persons)."""

    row: str
    column: str
    person: str


class Cell(BaseModel):
    value: int | None
    suppressed: bool


class Table(BaseModel):
    rows: list[str]
    columns: list[str]
    cells: list[list[Cell]]
    row_totals: list[Cell]
    column_totals: list[Cell]
    total: Cell


def round_count(n: int) -> int:
    return ROUNDING_BASE * ((n + ROUNDING_BASE // 2) // ROUNDING_BASE)


def shown(count: int, persons: int) -> Cell:
    """A single figure with primary suppression (for figures outside a cross-table)."""
    if persons < THRESHOLD:
        return Cell(value=None, suppressed=True)
    return Cell(value=round_count(count), suppressed=False)


# An entry of the table including its margins: (row, column), where row == len(rows) is the
# totals row and column == len(columns) the totals column.
Entry = tuple[int, int]


def tabulate(records: Iterable[Record], rows: Sequence[str], columns: Sequence[str]) -> Table:
    """Count ``records`` into a rows x columns table (records outside it are ignored)."""
    row_index = {r: i for i, r in enumerate(rows)}
    column_index = {c: j for j, c in enumerate(columns)}
    total_row, total_column = len(rows), len(columns)
    counts: dict[Entry, int] = defaultdict(int)
    persons: dict[Entry, set[str]] = defaultdict(set)
    for record in records:
        if record.row not in row_index or record.column not in column_index:
            continue
        i, j = row_index[record.row], column_index[record.column]
        for entry in ((i, j), (i, total_column), (total_row, j), (total_row, total_column)):
            counts[entry] += 1
            persons[entry].add(record.person)
    entries = [(i, j) for i in range(total_row + 1) for j in range(total_column + 1)]
    values = {e: counts[e] for e in entries}
    primary = {e for e in entries if len(persons[e]) < THRESHOLD}
    suppressed = protect(values, primary, total_row, total_column)

    def cell(e: Entry) -> Cell:
        if e in suppressed:
            return Cell(value=None, suppressed=True)
        return Cell(value=round_count(values[e]), suppressed=False)

    return Table(
        rows=list(rows),
        columns=list(columns),
        cells=[[cell((i, j)) for j in range(total_column)] for i in range(total_row)],
        row_totals=[cell((i, total_column)) for i in range(total_row)],
        column_totals=[cell((total_row, j)) for j in range(total_column)],
        total=cell((total_row, total_column)),
    )


def protect(values: dict[Entry, int], primary: set[Entry], last_row: int, last_column: int) -> set[Entry]:
    """The primary suppressions plus the secondary ones that keep each from being recomputed."""
    suppressed = set(primary)
    margin = {e for e in values if e[0] == last_row or e[1] == last_column}

    def cost(e: Entry) -> tuple[int, bool, Entry]:
        # The smallest figure hides least; a total is worth more than a cell of equal size.
        return values[e], e in margin, e

    while True:
        _complete_lines(values, suppressed, last_row, last_column, cost)
        bridge = _find_bridge(suppressed)
        if bridge is None:
            return suppressed
        side_a, side_b = bridge
        closing = [
            e
            for e in values
            if e not in suppressed
            and ((("r", e[0]) in side_a and ("c", e[1]) in side_b) or (("r", e[0]) in side_b and ("c", e[1]) in side_a))
        ]
        suppressed.add(min(closing, key=cost))


def _complete_lines(
    values: dict[Entry, int],
    suppressed: set[Entry],
    last_row: int,
    last_column: int,
    cost: Callable[[Entry], tuple[int, bool, Entry]],
) -> None:
    """Until no line (row or column, totals included) has exactly one suppressed entry."""
    lines = [[(i, j) for j in range(last_column + 1)] for i in range(last_row + 1)]
    lines += [[(i, j) for i in range(last_row + 1)] for j in range(last_column + 1)]
    changed = True
    while changed:
        changed = False
        for line in lines:
            if sum(e in suppressed for e in line) == 1:
                suppressed.add(min((e for e in line if e not in suppressed), key=cost))
                changed = True


Node = tuple[str, int]  # ("r", row) or ("c", column)


def _find_bridge(suppressed: set[Entry]) -> tuple[set[Node], set[Node]] | None:
    """The two sides of a suppressed entry that is a bridge (Tarjan's low-link), or None."""
    adjacent: dict[Node, set[Node]] = defaultdict(set)
    for i, j in suppressed:
        adjacent[("r", i)].add(("c", j))
        adjacent[("c", j)].add(("r", i))
    order: dict[Node, int] = {}
    low: dict[Node, int] = {}
    bridges: list[tuple[Node, Node]] = []

    def visit(node: Node, parent: Node | None) -> None:
        order[node] = low[node] = len(order)
        for other in sorted(adjacent[node]):
            if other == parent:  # one entry per (row, column): no parallel edges
                continue
            if other in order:
                low[node] = min(low[node], order[other])
            else:
                visit(other, node)
                low[node] = min(low[node], low[other])
                if low[other] > order[node]:
                    bridges.append((node, other))

    for node in sorted(adjacent):
        if node not in order:
            visit(node, None)
    if not bridges:
        return None
    a, b = bridges[0]

    def side(start: Node) -> set[Node]:
        seen, stack = {start}, [start]
        while stack:
            node = stack.pop()
            for other in adjacent[node] - seen:
                if {node, other} != {a, b}:
                    seen.add(other)
                    stack.append(other)
        return seen

    return side(a), side(b)
