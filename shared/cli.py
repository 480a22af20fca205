"""Operator CLI of every service's dead-letter queue, and the privacy officer's access log.

    python -m shared.cli --service matching dead-letters list [--topic T] [--all]
    python -m shared.cli --service matching dead-letters show ID
    python -m shared.cli --service matching dead-letters replay ID
    python -m shared.cli --service matching dead-letters replay --all [--topic T]
    python -m shared.cli [--service signals] access-log [--subject ID] [--since 2026-11-25T08:00]

The service's database is ``<SERVICE>_DATABASE_URL`` (as the service itself reads it). A
replay puts the original record (same bytes, key and event id) and the events parked behind
it back on the original topic through the service's outbox, in order; the running
service's relay publishes them and its consumer handles them (inboxes dedupe). The access
log is read from every service's database (or the one given), merged in time order."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared import access_log, dead_letters
from shared.config import ServiceSettings

SERVICES = ("signals", "screening", "matching", "notify", "municipalities", "casework", "operators")
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


async def show_access_log(args: argparse.Namespace) -> int:
    """Every service's access log lines (or one service's), oldest first."""
    lines: list[dict[str, Any]] = []
    failed = 0
    for service in [args.service] if args.service else SERVICES:
        try:
            conn = await asyncpg.connect(database_url(service), timeout=10)
        except (OSError, asyncpg.PostgresError) as exc:
            print(f"{service}: database not reachable ({type(exc).__name__}); its lines are missing", file=sys.stderr)
            failed += 1
            continue
        try:
            found = await access_log.entries(conn, subject=args.subject, since=args.since, limit=args.limit)
        except asyncpg.UndefinedTableError:
            print(f"{service}: no access log yet (the service has not run its migrations)", file=sys.stderr)
            failed += 1
            continue
        finally:
            await conn.close()
        lines += [{"service": service, **line} for line in found]
    lines.sort(key=lambda line: (line["at"], line["service"], line["id"]))
    print(table(lines[-args.limit:], access_log.COLUMNS) if lines else "no access log lines")
    return 1 if failed else 0


async def run(args: argparse.Namespace) -> int:
    if args.command == "access-log":
        return await show_access_log(args)
    if args.service is None:
        print("dead-letters needs --service", file=sys.stderr)
        return 2
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


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="python -m shared.cli", description=__doc__.split("\n\n")[0],
        epilog="The database is <SERVICE>_DATABASE_URL, e.g. MATCHING_DATABASE_URL.",
    )
    cli.add_argument("--service", choices=SERVICES,
                     help="whose dead letters (required there); for access-log: only this service")
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
    log = commands.add_parser(
        "access-log", help="who read or changed which record, when (NEN 7513), across services",
        description="The access log of every service (or --service): who (role, credential, organisation), on "
                    "whose behalf, what (read, create, update, erase), which record (id), when and with what "
                    "outcome. Append-only; ids only, never a personal value.")
    log.add_argument("--subject", help="only lines about this id (a signal, referral, erasure, follow-up id, or a "
                                       "caregiver digest as in the erasure log)")
    log.add_argument("--since", type=_instant, help="only lines from this time on (ISO 8601, UTC "
                                                                  "when no offset is given)")
    log.add_argument("--limit", type=int, default=1000, help="at most this many lines, the newest (default 1000)")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
