"""Administer municipalities' credentials.

    python -m services.municipalities.cli issue-key --municipality GM0327 [--expires 2027-12-31]
    python -m services.municipalities.cli list-keys
    python -m services.municipalities.cli revoke-key --id <key id>

Only existing municipalities (the CBS list) that this deployment serves (the district table)
get a credential. A key is printed once, with its id; only its digest is stored; a revoked
key is never valid again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg

from services.municipalities.api import MIGRATIONS
from services.municipalities.config import MunicipalitiesSettings
from services.municipalities.districts import MUNICIPALITIES, is_known
from shared import auth, municipality_codes
from shared.db import migrate


async def _run(args: argparse.Namespace) -> int:
    dsn = args.database_url or MunicipalitiesSettings().database_url
    await migrate(dsn, MIGRATIONS)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            if args.command == "issue-key":
                key = auth.new_key(args.key)
                key_id = await auth.issue(
                    conn, key=key, scopes=[auth.Scope.MUNICIPALITY_READ], subject=args.municipality,
                    holder=municipality_codes.municipalities()[args.municipality], label=args.label,
                    expires_at=args.expires, rate_per_minute=args.rate_per_minute)
                print(key)
                print(f"id {key_id} (the key is shown only now)", file=sys.stderr)
            else:
                await auth.run_key_admin_command(conn, args.command, args)
    except auth.KeyRefused as exc:
        print(f"error: --key: {exc}", file=sys.stderr)
        return 2
    finally:
        await conn.close()
    return 0


def _municipality_code(value: str) -> str:
    if not municipality_codes.exists(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not the CBS code of an existing Dutch municipality")
    if not is_known(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a municipality served here (one of: {', '.join(sorted(MUNICIPALITIES))})")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.municipalities.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="defaults to MUNICIPALITIES_DATABASE_URL")
    sub = parser.add_subparsers(dest="command", required=True)
    issue = sub.add_parser(
        "issue-key", help="issue a municipality's credential (printed once; only its hash is stored)"
    )
    issue.add_argument("--municipality", required=True, type=_municipality_code, help="CBS code, e.g. GM0327")
    auth.add_issue_arguments(issue)
    auth.add_key_admin_commands(sub)
    return asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
