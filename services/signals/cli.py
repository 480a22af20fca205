"""Administer partner organisations and their API keys, and the privacy officer's credential.

    python -m services.signals.cli add-organisation --name "Huisartsenpraktijk" --kind gp
    python -m services.signals.cli issue-key --organisation "Huisartsenpraktijk"
    python -m services.signals.cli issue-privacy-officer-key --name "Privacy officer (controller)"
    python -m services.signals.cli list-keys
    python -m services.signals.cli revoke-key --id <key id>
    python -m services.signals.cli erasure-log

A key is printed once, with its id; only its digest is stored. Operators list and revoke
keys by id. A revoked key is never valid again, not even when issued anew.

A partner key withdraws only its organisation's own signals; erasing a person across every
organisation (GDPR art. 17) takes the privacy officer's credential. Both are recorded in the
append-only erasure log.

Municipalities' credentials are issued by the municipalities service:
``python -m services.municipalities.cli --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Sequence

import asyncpg

from services.signals import repository
from services.signals.api import MIGRATIONS
from services.signals.config import SignalsSettings
from shared import auth
from shared.contracts import SourceKind
from shared.db import migrate


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
                org = await conn.fetchrow("SELECT id, name FROM organisations WHERE name = $1", args.organisation)
                if org is None:
                    print(f"error: no organisation named {args.organisation!r}", file=sys.stderr)
                    return 2
                await _issue(conn, args, auth.PARTNER_SCOPES, str(org["id"]), org["name"])
            elif args.command == "issue-privacy-officer-key":
                await _issue(conn, args, [auth.Scope.PRIVACY_OFFICER], str(uuid.uuid4()), args.name)
            elif args.command == "erasure-log":
                for row in await repository.erasure_log(conn, args.limit):
                    print(f"{row['requested_at']:%Y-%m-%dT%H:%M:%SZ}  erasure {row['erasure_id']}  {row['role']} "
                          f"{row['requester']!r} ({row['requested_by']})  scope {row['scope']}  by {row['identified_by']}  "
                          f"signals {row['signals_erased']}  subjects {','.join(d[:16] for d in row['subject_digests'])}")
            else:
                await auth.run_key_admin_command(conn, args.command, args)
    except auth.KeyRefused as exc:
        print(f"error: --key: {exc}", file=sys.stderr)
        return 2
    finally:
        await conn.close()
    return 0


async def _issue(conn: asyncpg.Connection, args: argparse.Namespace, scopes: Sequence[auth.Scope],
                 subject: str, holder: str) -> None:
    key = auth.new_key(args.key)
    key_id = await auth.issue(conn, key=key, scopes=scopes, subject=subject, holder=holder, label=args.label,
                              expires_at=args.expires, rate_per_minute=args.rate_per_minute)
    print(key)
    print(f"id {key_id} (scopes: {', '.join(scopes)}; the key is shown only now)", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="defaults to SIGNALS_DATABASE_URL")
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add-organisation", help="create or update a partner organisation")
    add.add_argument("--name", required=True)
    add.add_argument("--kind", required=True, choices=[k.value for k in SourceKind])
    issue = sub.add_parser("issue-key", help="issue an API key (printed once; only its hash is stored)")
    issue.add_argument("--organisation", required=True, help="the organisation's name")
    auth.add_issue_arguments(issue)
    officer = sub.add_parser("issue-privacy-officer-key",
                             help="issue the privacy officer's credential, the only one that erases a person "
                                  "across organisations (printed once; only its hash is stored)")
    officer.add_argument("--name", required=True, help="who holds it, e.g. the controller's privacy officer")
    auth.add_issue_arguments(officer)
    auth.add_key_admin_commands(sub)
    log = sub.add_parser("erasure-log", help="the append-only erasure log, newest first "
                                             "(subjects as pseudonym digests, no personal data)")
    log.add_argument("--limit", type=int, default=100)
    return asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
