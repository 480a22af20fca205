"""Operator CLI of every service's dead-letter queue.

    python -m shared.cli --service matching dead-letters list [--topic T] [--all]
    python -m shared.cli --service matching dead-letters show ID
    python -m shared.cli --service matching dead-letters replay ID
    python -m shared.cli --service matching dead-letters replay --all [--topic T]

The service's database is ``<SERVICE>_DATABASE_URL`` (as the service itself reads it). A
replay puts the original record (same bytes, key and event id) and the events parked behind
it back on the original topic through the service's outbox, in order; the running
service's relay publishes them and its consumer handles them (inboxes dedupe)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import asyncpg

from shared import dead_letters
from shared.config import ServiceSettings

SERVICES = ("signals", "screening", "matching", "notify", "municipalities", "operators")
_COLUMNS = ("id", "status", "created_at", "topic", "partition", "offset", "key", "event_type", "error_type",
            "attempts", "error")


def database_url(service: str) -> str:
    return os.environ.get(f"{service.upper()}_DATABASE_URL", ServiceSettings().database_url)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as an aligned text table, long cells cut."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


async def run(args: argparse.Namespace) -> int:
    conn = await asyncpg.connect(database_url(args.service))
    try:
        await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
        if args.action == "list":
            statuses = ("dead", "parked", "replaying", "replayed") if args.all else dead_letters.UNRESOLVED
            rows = await dead_letters.list_dead_letters(conn, topic=args.topic, statuses=statuses)
            print(table([dict(r) for r in rows], _COLUMNS) if rows else "no dead letters")
            return 0
        if args.action == "show":
            row = await dead_letters.get_dead_letter(conn, args.id)
            if row is None:
                print(f"no dead letter {args.id}", file=sys.stderr)
                return 1
            print(json.dumps(dead_letters.describe(row), indent=2, default=str))
            return 0
        if args.id is None and not args.all:
            print("replay needs a dead letter ID or --all", file=sys.stderr)
            return 2
        async with conn.transaction():
            try:
                if args.all:
                    replayed = await dead_letters.replay_all(conn, topic=args.topic)
                else:
                    replayed = await dead_letters.replay(conn, args.id)
            except dead_letters.ReplayError as exc:
                print(str(exc), file=sys.stderr)
                return 1
        print(f"replayed {len(replayed)} record(s) through the outbox: {', '.join(map(str, replayed)) or '-'}")
        return 0
    finally:
        await conn.close()


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="python -m shared.cli", description=__doc__.split("\n\n")[0],
        epilog="The database is <SERVICE>_DATABASE_URL, e.g. MATCHING_DATABASE_URL.",
    )
    cli.add_argument("--service", required=True, choices=SERVICES, help="whose dead letters")
    commands = cli.add_subparsers(dest="command", required=True)
    dlq = commands.add_parser("dead-letters", help="list, show and replay dead letters",
                              description="List, show and replay the service's dead letters.")
    actions = dlq.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="dead letters and the events parked behind them")
    listing.add_argument("--topic", help="only this original topic")
    listing.add_argument("--all", action="store_true", help="also those already replayed")
    show = actions.add_parser("show", help="one dead letter in full: error, headers, body")
    show.add_argument("id", type=int)
    replay = actions.add_parser(
        "replay", help="put a dead letter and its parked followers back on the original topic",
        description="Replay dead letter ID (or every dead one with --all), then the events parked "
                    "behind it, in order, to the original topic through the outbox.")
    replay.add_argument("id", type=int, nargs="?")
    replay.add_argument("--all", action="store_true", help="every dead letter")
    replay.add_argument("--topic", help="with --all: only this original topic")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
