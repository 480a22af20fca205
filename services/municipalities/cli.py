"""Administer municipalities' credentials.

    python -m services.municipalities.cli issue-key --municipality GM0327
    python -m services.municipalities.cli revoke-key --key <key>

Only municipalities this deployment serves (the district table) get a credential.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys

import asyncpg

from services.municipalities import repository
from services.municipalities.api import MIGRATIONS
from services.municipalities.config import MunicipalitiesSettings
from services.municipalities.districts import MUNICIPALITIES, is_known
from shared.db import migrate


async def _run(args: argparse.Namespace) -> int:
    dsn = args.database_url or MunicipalitiesSettings().database_url
    await migrate(dsn, MIGRATIONS)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            if args.command == "issue-key":
                key = args.key or secrets.token_urlsafe(32)
                await repository.add_municipality_key(conn, args.municipality, key, args.label)
                print(key)
            elif args.command == "revoke-key":
                revoked = await repository.revoke_municipality_key(conn, args.key)
                print("revoked" if revoked else "no such active key")
    finally:
        await conn.close()
    return 0


def _municipality_code(value: str) -> str:
    if not is_known(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a municipality served here (one of: {', '.join(sorted(MUNICIPALITIES))})")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.municipalities.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="defaults to MUNICIPALITIES_DATABASE_URL")
    sub = parser.add_subparsers(dest="command", required=True)
    issue = sub.add_parser("issue-key", help="issue a municipality's credential (printed once; only its hash is stored)")
    issue.add_argument("--municipality", required=True, type=_municipality_code, help="CBS code, e.g. GM0327")
    issue.add_argument("--key", help="use this key instead of a random one (demo and tests)")
    issue.add_argument("--label", default="", help="a note on who holds the key")
    revoke = sub.add_parser("revoke-key", help="revoke a municipality's credential")
    revoke.add_argument("--key", required=True)
    return asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
