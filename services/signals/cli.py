"""Administer partner organisations and their API keys, and the privacy officer's credential.

    python -m services.signals.cli add-organisation --name "Huisartsenpraktijk" --kind gp
    python -m services.signals.cli issue-key --organisation "Huisartsenpraktijk"
    python -m services.signals.cli issue-privacy-officer-key --name "Privacy officer (controller)"
    python -m services.signals.cli erasure-log
    python -m services.signals.cli sign-in-link --organisation "Huisartsenpraktijk"

A partner key withdraws only its organisation's own signals; erasing a person across every
organisation (GDPR art. 17) takes the privacy officer's credential. Both are recorded in the
append-only erasure log.

Municipalities' credentials are issued by the municipalities service:
``python -m services.municipalities.cli --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys

import asyncpg

from services.signals import repository
from services.signals.api import MIGRATIONS
from services.signals.config import SignalsSettings
from services.signals.sessions import new_token
from shared.contracts import SourceKind
from shared.db import CONNECTION_ERRORS, connection_failure, migrate


async def _run(args: argparse.Namespace) -> int:
    settings = SignalsSettings()
    dsn = args.database_url or settings.database_url
    await migrate(dsn, MIGRATIONS)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            if args.command == "add-organisation":
                org_id = await repository.upsert_organisation(conn, args.name, args.kind)
                print(f"organisation {args.name!r} ({args.kind}): {org_id}")
            elif args.command == "issue-key":
                org_id = await conn.fetchval("SELECT id FROM organisations WHERE name = $1", args.organisation)
                if org_id is None:
                    print(f"error: no organisation named {args.organisation!r}", file=sys.stderr)
                    return 2
                key = args.key or secrets.token_urlsafe(32)
                await repository.add_api_key(conn, org_id, key, args.label)
                print(key)
            elif args.command == "issue-privacy-officer-key":
                key = args.key or secrets.token_urlsafe(32)
                await repository.add_privacy_officer_key(conn, args.name, key, args.label)
                print(key)
            elif args.command == "revoke-key":
                revoked = False
                for table in ("api_keys", "privacy_officer_keys"):
                    result = await conn.execute(
                        f"UPDATE {table} SET revoked_at = now() WHERE key_hash = $1 AND revoked_at IS NULL",
                        repository.hash_key(args.key),
                    )
                    revoked = revoked or result != "UPDATE 0"
                print("revoked" if revoked else "no such active key")
            elif args.command == "sign-in-link":
                organisation = await repository.organisation_by_name(conn, args.organisation)
                if organisation is None:
                    print(f"error: no organisation named {args.organisation!r}", file=sys.stderr)
                    return 2
                token, token_hash = new_token()
                await repository.add_sign_in_token(conn, token_hash, organisation.id, args.hours)
                base = (args.base_url or settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
                print(f"{base}/melden/link/{token}")
            elif args.command == "erasure-log":
                for row in await repository.erasure_log(conn, args.limit):
                    print(f"{row['requested_at']:%Y-%m-%dT%H:%M:%SZ}  erasure {row['erasure_id']}  {row['role']} "
                          f"{row['requester']!r} ({row['requested_by']})  scope {row['scope']}  by {row['identified_by']}  "
                          f"signals {row['signals_erased']}  subjects {','.join(d[:16] for d in row['subject_digests'])}")
    finally:
        await conn.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.signals.cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="defaults to SIGNALS_DATABASE_URL")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add-organisation", help="create or update a partner organisation")
    add.add_argument("--name", required=True)
    add.add_argument("--kind", required=True, choices=[k.value for k in SourceKind])
    issue = sub.add_parser("issue-key", help="issue an API key (printed once; only its hash is stored)")
    issue.add_argument("--organisation", required=True, help="the organisation's name")
    issue.add_argument("--key", help="use this key instead of a random one (demo and tests)")
    issue.add_argument("--label", default="", help="a note on who holds the key")
    officer = sub.add_parser("issue-privacy-officer-key",
                             help="issue the privacy officer's credential, the only one that erases a person "
                                  "across organisations (printed once; only its hash is stored)")
    officer.add_argument("--name", required=True, help="who holds it, e.g. the controller's privacy officer")
    officer.add_argument("--key", help="use this key instead of a random one (demo and tests)")
    officer.add_argument("--label", default="", help="a note on the credential")
    revoke = sub.add_parser("revoke-key", help="revoke an API key or a privacy officer's credential")
    revoke.add_argument("--key", required=True)
    log = sub.add_parser("erasure-log", help="the append-only erasure log, newest first "
                                             "(subjects as pseudonym digests, no personal data)")
    log.add_argument("--limit", type=int, default=100)
    link = sub.add_parser("sign-in-link", help="a one-time link that signs a professional of the organisation in "
                                               "to the signal form (printed once; only its hash is stored)")
    link.add_argument("--organisation", required=True, help="the organisation's name")
    link.add_argument("--hours", type=float, default=24, help="how long the link works (default 24)")
    link.add_argument("--base-url", help="where the signals service is reached; default SIGNALS_PUBLIC_URL")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except CONNECTION_ERRORS as exc:
        print(connection_failure(args.database_url or SignalsSettings().database_url, "SIGNALS_DATABASE_URL", exc),
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
