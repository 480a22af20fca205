"""Import and export the social map (Open Referral HSDS 3.x).

    python -m services.matching.cli import services/matching/demo/social_map.json
    python -m services.matching.cli import path/to/datapackage-dir --every 500
    python -m services.matching.cli export social_map.json
    python -m services.matching.cli export path/to/dir --format csv

Import reads JSON (service_full or organization_full) or a tabular datapackage directory,
prints every problem as ``file:record:field: message``, and imports the records that could
be read. The last line is the summary."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import asyncpg

from services.matching import hsds
from services.matching.repository import SocialMapRepository
from services.matching.config import MatchingSettings
from shared.db import migrate, run_cli

MIGRATIONS = Path(__file__).parent / "migrations"


async def _import(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    result = hsds.load(args.path)
    for issue in result.issues:
        print(f"{issue.file}:{issue.record}:{issue.field}: {issue.message}")
    if not result.services and result.issues:
        print(f"nothing imported from {args.path}: {len(result.issues)} issues", file=sys.stderr)
        return 2
    total = len(result.services)

    def progress(done: int) -> None:
        if done % args.every == 0 and done < total:
            print(f"imported {done}/{total}", flush=True)

    report = await SocialMapRepository(conn).import_records(result.services, progress)
    print(f"{total} services: {report.created} created, {report.updated} updated, {report.unchanged} unchanged; "
          f"organizations: {report.organizations_created} created, {report.organizations_updated} updated, "
          f"{report.organizations_unchanged} unchanged; {len(result.issues)} issues")
    return 0


async def _export(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    result = hsds.parse_json(await SocialMapRepository(conn).stored_records(), "database")
    if args.format == "csv":
        hsds.write_datapackage(result.services, args.path)
    else:
        exported = [hsds.to_service_full(s) for s in result.services]
        args.path.write_text(json.dumps(exported, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(result.services)} services exported to {args.path}")
    return 0


async def _run(args: argparse.Namespace) -> int:
    dsn = args.database_url or MatchingSettings().database_url
    await migrate(dsn, MIGRATIONS)
    conn = await asyncpg.connect(dsn)
    try:
        return await (_import if args.command == "import" else _export)(conn, args)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.matching.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="defaults to MATCHING_DATABASE_URL, else the running `make run` "
                        "stack's database (.data/stack.json)")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="import a JSON file or a datapackage directory")
    imp.add_argument("path", type=Path)
    imp.add_argument("--every", type=int, default=100, metavar="N", help="report progress every N records")
    exp = sub.add_parser("export", help="export the stored social map")
    exp.add_argument("path", type=Path, help="a JSON file, or a directory for --format csv")
    exp.add_argument("--format", choices=["json", "csv"], default="json")
    args = parser.parse_args(argv)
    return run_cli(_run(args), args.database_url or MatchingSettings().database_url, "MATCHING_DATABASE_URL")


if __name__ == "__main__":
    sys.exit(main())
