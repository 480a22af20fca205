"""Administer the caregiver consultants' workbench.

    python -m services.casework.cli issue-consultant --municipality GM0327 --name "…" --email …
           [--fallback-region "Regionaal vangnet"]      # prints a one-time sign-in link
    python -m services.casework.cli sign-in-link --email …             # a new link
    python -m services.casework.cli set-region --name "Regio Drenthe" --municipality GM1680 …
    python -m services.casework.cli set-wmo-desk --municipality GM0327 --name "Wmo-loket …" --email …

A municipality with no consultant of its own lands in its region's fallback queue; a
municipality in no region lands in the operator's default region (CASEWORK_DEFAULT_REGION).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys

import asyncpg

from services.casework import service
from services.casework.api import MIGRATIONS
from services.casework.config import CaseworkSettings
from shared.contracts import utcnow
from shared.db import migrate


def _code(value: str) -> str:
    if not re.fullmatch(r"GM\d{4}", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a CBS municipality code like GM0327")
    return value


async def _run(args: argparse.Namespace) -> int:
    settings = CaseworkSettings()
    dsn = args.database_url or settings.database_url
    await migrate(dsn, MIGRATIONS)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            uow = service.CaseworkUnitOfWork(conn)
            if args.command == "issue-consultant":
                consultant_id = await uow.cases.add_consultant(
                    args.name, args.email, args.municipality, args.fallback_region)
                print(await service.issue_sign_in_link(uow, settings, consultant_id, utcnow()))
            elif args.command == "sign-in-link":
                consultant = await uow.cases.consultant_by_email(args.email)
                if consultant is None:
                    print(f"no consultant with e-mail {args.email}", file=sys.stderr)
                    return 1
                print(await service.issue_sign_in_link(uow, settings, consultant["id"], utcnow()))
            elif args.command == "set-region":
                await uow.cases.set_region(args.name, args.municipality)
                print(f"region {args.name}: {', '.join(sorted(set(args.municipality)))}")
            elif args.command == "set-wmo-desk":
                await uow.cases.set_wmo_desk(args.municipality, args.name, args.email)
                print(f"Wmo desk of {args.municipality}: {args.name} <{args.email}>")
    finally:
        await conn.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.casework.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="defaults to CASEWORK_DATABASE_URL")
    sub = parser.add_subparsers(dest="command", required=True)
    issue = sub.add_parser("issue-consultant", help="add (or update) a consultant and print a one-time sign-in link")
    issue.add_argument("--municipality", required=True, type=_code, help="the consultant's municipality, e.g. GM0327")
    issue.add_argument("--name", required=True, help="the consultant's name, shown in case histories")
    issue.add_argument("--email", required=True, help="identifies the consultant (for new sign-in links)")
    issue.add_argument("--fallback-region", help="also serve this region's fallback queue (the back-up)")
    link = sub.add_parser("sign-in-link", help="print a new one-time sign-in link for a consultant")
    link.add_argument("--email", required=True)
    region = sub.add_parser("set-region", help="set the municipalities of a region (its fallback queue)")
    region.add_argument("--name", required=True)
    region.add_argument("--municipality", required=True, action="append", type=_code, help="repeat for each")
    desk = sub.add_parser("set-wmo-desk", help="the municipality's Wmo desk, for hand-offs")
    desk.add_argument("--municipality", required=True, type=_code)
    desk.add_argument("--name", required=True)
    desk.add_argument("--email", required=True)
    return asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
