"""Operator CLI of every service's dead-letter queue, and the privacy officer's access log.

    python -m shared.cli --service matching dead-letters list [--topic T] [--all]
    python -m shared.cli --service matching dead-letters show ID
    python -m shared.cli --service matching dead-letters replay ID
    python -m shared.cli --service matching dead-letters replay --all [--topic T]
    python -m shared.cli [--service signals] access-log [--subject ID] [--since 2026-11-25T08:00]

The service's database is ``<SERVICE>_DATABASE_URL`` (as the service itself reads it; else the
running ``make run`` stack's). ``--output json`` prints lists as JSON. A
replay puts the original record (same bytes, key and event id) and the events parked behind
it back on the original topic through the service's outbox, in order; the running
service's relay publishes them and its consumer handles them (inboxes dedupe). The access
log is read from every service's database (or the one given), merged in time order."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import asyncpg

from shared import access_log, dead_letters
from shared.commandline import Invocation, Refused, Tool, instant
from shared.config import ServiceSettings, running_stack_database
from shared.db import connect

SERVICES = ("signals", "screening", "matching", "notify", "municipalities", "casework", "operators")
_COLUMNS = (
    "id",
    "status",
    "created_at",
    "topic",
    "partition",
    "offset",
    "key",
    "event_type",
    "error_type",
    "attempts",
    "error",
)

Command = Invocation[ServiceSettings]


def database_url(service: str) -> str:
    """The service's database as the service itself finds it: its setting, else the running stack's."""
    return (
        os.environ.get(f"{service.upper()}_DATABASE_URL")
        or running_stack_database(service)
        or ServiceSettings().database_url
    )


def _settings(args: argparse.Namespace) -> ServiceSettings:
    if args.service is None:
        if args.database:
            raise Refused("dead-letters needs the service whose dead letters to read", field="--service")
        return ServiceSettings()
    return ServiceSettings(service_name=args.service, database_url=database_url(args.service))


TOOL = Tool(
    "python -m shared.cli",
    __doc__,
    _settings,
    lambda args: f"{str(args.service).upper()}_DATABASE_URL",
    database_help="the service's database (default <SERVICE>_DATABASE_URL, else the running `make run` stack's)",
)
TOOL.parser.add_argument(
    "--service", choices=SERVICES, help="whose dead letters (required there); for access-log: only this service"
)


async def show_access_log(cmd: Command) -> int:
    """Every service's access log lines (or one service's), oldest first."""
    args = cmd.args
    lines: list[dict[str, Any]] = []
    failed = 0
    for service in [args.service] if args.service else SERVICES:
        try:
            conn = await connect(args.database_url if args.service and args.database_url else database_url(service))
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
    cmd.show(lines[-args.limit :], access_log.COLUMNS, empty="no access log lines")
    return 1 if failed else 0


async def _list(cmd: Command) -> int:
    statuses = ("dead", "parked", "replaying", "replayed") if cmd.args.all else dead_letters.UNRESOLVED
    rows = await dead_letters.list_dead_letters(cmd.conn, topic=cmd.args.topic, statuses=statuses)
    cmd.show([dict(r) for r in rows], _COLUMNS, empty="no dead letters")
    return 0


async def _show(cmd: Command) -> int:
    row = await dead_letters.get_dead_letter(cmd.conn, cmd.args.id)
    if row is None:
        raise Refused(f"no dead letter {cmd.args.id}", code=1)
    print(json.dumps(dead_letters.describe(row), indent=2, default=str))
    return 0


async def _replay(cmd: Command) -> int:
    args = cmd.args
    if args.id is None and not args.all:
        raise Refused("replay needs a dead letter ID or --all")
    try:
        replayed = await (
            dead_letters.replay_all(cmd.conn, topic=args.topic) if args.all else dead_letters.replay(cmd.conn, args.id)
        )
    except dead_letters.ReplayError as exc:
        raise Refused(str(exc), code=1) from exc
    print(f"replayed {len(replayed)} record(s) through the outbox: {', '.join(map(str, replayed)) or '-'}")
    return 0


_, _dlq = TOOL.group(
    "dead-letters",
    help="list, show and replay dead letters",
    description="List, show and replay the service's dead letters.",
)
_listing = _dlq.command("list", _list, help="dead letters and the events parked behind them")
_listing.add_argument("--topic", help="only this original topic")
_listing.add_argument("--all", action="store_true", help="also those already replayed")
_dlq.command("show", _show, help="one dead letter in full: error, headers, body").add_argument("id", type=int)
_replaying = _dlq.command(
    "replay",
    _replay,
    help="put a dead letter and its parked followers back on the original topic",
    description="Replay dead letter ID (or every dead one with --all), then the events parked "
    "behind it, in order, to the original topic through the outbox.",
)
_replaying.add_argument("id", type=int, nargs="?")
_replaying.add_argument("--all", action="store_true", help="every dead letter")
_replaying.add_argument("--topic", help="with --all: only this original topic")
_log = TOOL.command(
    "access-log",
    show_access_log,
    database=False,
    help="who read or changed which record, when (NEN 7513), across services",
    description="The access log of every service (or --service): who (role, credential, organisation), on "
    "whose behalf, what (read, create, update, erase), which record (id), when and with what "
    "outcome. Append-only; ids only, never a personal value.",
)
_log.add_argument(
    "--subject",
    help="only lines about this id (a signal, referral, erasure, follow-up id, or a "
    "caregiver digest as in the erasure log)",
)
_log.add_argument("--since", type=instant, help="only lines from this time on (ISO 8601, UTC when no offset is given)")
_log.add_argument("--limit", type=int, default=1000, help="at most this many lines, the newest (default 1000)")


if __name__ == "__main__":
    sys.exit(TOOL.main())
