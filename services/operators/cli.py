"""Administer the operators of the console.

    python -m services.operators.cli issue-operator --name "Jan Jansen"
    python -m services.operators.cli revoke-operator --name "Jan Jansen"

``issue-operator`` prints a sign-in link (valid for OPERATORS_SIGN_IN_LINK_MINUTES, once):
opening it signs the operator in with a session cookie. Issue a new link whenever one is
needed; only digests of links and sessions are stored."""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg

from services.operators import service
from services.operators.api import MIGRATIONS
from services.operators.config import OperatorsSettings
from shared.db import migrate


async def _run(args: argparse.Namespace) -> int:
    settings = OperatorsSettings()
    dsn = args.database_url or settings.database_url
    await migrate(dsn, MIGRATIONS)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            uow = service.OperatorsUnitOfWork(conn)
            if args.command == "issue-operator":
                print(await service.issue_operator(uow, settings, args.name, token=args.token, reusable=args.reusable,
                                                   valid_minutes=args.valid_minutes))
                return 0
            revoked = await uow.operators.revoke(args.name)
        print("revoked" if revoked else f"no active operator {args.name!r}", file=sys.stdout if revoked else sys.stderr)
        return 0 if revoked else 1
    finally:
        await conn.close()


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m services.operators.cli", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("--database-url", help="defaults to OPERATORS_DATABASE_URL")
    sub = cli.add_subparsers(dest="command", required=True)
    issue = sub.add_parser("issue-operator", help="create an operator (or reuse one) and print a sign-in link",
                           description="Create the operator if new and print a one-time sign-in link for it.")
    issue.add_argument("--name", required=True, help="who the operator is (shown on the console)")
    issue.add_argument("--token", help="use this link token instead of a random one (demo and tests)")
    issue.add_argument("--reusable", action="store_true",
                       help="the link signs in more than once until it expires (demo only)")
    issue.add_argument("--valid-minutes", type=float,
                       help="how long the link is valid (default OPERATORS_SIGN_IN_LINK_MINUTES, 60)")
    revoke = sub.add_parser("revoke-operator", help="revoke an operator: links and sessions stop working")
    revoke.add_argument("--name", required=True)
    return cli


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "issue-operator" and args.token is not None and len(args.token) < 8:
        print("--token must be at least 8 characters", file=sys.stderr)
        return 2
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
