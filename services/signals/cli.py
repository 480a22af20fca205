"""Administer partner organisations and their API keys, and the privacy officer's credential.

    python -m services.signals.cli add-organisation --name "Huisartsenpraktijk" --kind gp
    python -m services.signals.cli issue-key --organisation "Huisartsenpraktijk"
    python -m services.signals.cli issue-privacy-officer-key --name "Privacy officer (controller)"
    python -m services.signals.cli list-keys
    python -m services.signals.cli revoke-key --id <key id>
    python -m services.signals.cli erasure-log
    python -m services.signals.cli keys rotate          # re-wrap data keys under the new master key
    python -m services.signals.cli keys list-erased     # keep a copy outside the backups
    python -m services.signals.cli keys shred-erased [--file erased-keys.txt]   # after a restore
    python -m services.signals.cli sign-in-link --organisation "Huisartsenpraktijk"

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
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from services.signals import keys, repository
from services.signals.api import MIGRATIONS
from services.signals.config import SignalsSettings
from services.signals.sessions import new_token
from shared import auth
from shared.contracts import SourceKind
from shared.crypto import MasterKeyring
from shared.db import migrate, run_cli


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
            elif args.command == "keys":
                return await _keys(conn, settings, args)
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
                    print(
                        f"{row['requested_at']:%Y-%m-%dT%H:%M:%SZ}  erasure {row['erasure_id']}  {row['role']} "
                        f"{row['requester']!r} ({row['requested_by']})  scope {row['scope']}  "
                        f"by {row['identified_by']}  "
                        f"signals {row['signals_erased']}  subjects {','.join(d[:16] for d in row['subject_digests'])}"
                    )
            else:
                await auth.run_key_admin_command(conn, args.command, args)
    except auth.KeyRefused as exc:
        print(f"error: --key: {exc}", file=sys.stderr)
        return 2
    finally:
        await conn.close()
    return 0


async def _keys(conn: asyncpg.Connection, settings: SignalsSettings, args: argparse.Namespace) -> int:
    if args.action == "rotate":
        keyring = MasterKeyring.parse(settings.encryption_master_keys.get_secret_value())
        count = await keys.rotate(conn, keyring)
        print(f"re-wrapped {count} data key(s) under master key {keyring.current!r}; once every deployment "
              "runs with it, the older master keys can be removed from SIGNALS_ENCRYPTION_MASTER_KEYS")
    elif args.action == "list-erased":
        print("\n".join(await keys.erased_key_ids(conn)))
    else:
        more = [line.strip() for line in args.file.read_text().splitlines() if line.strip()] if args.file else []
        print(f"destroyed {await keys.shred_erased(conn, more)} restored data key(s) of erased caregivers")
    return 0


async def _issue(conn: asyncpg.Connection, args: argparse.Namespace, scopes: Sequence[auth.Scope],
                 subject: str, holder: str) -> None:
    key = auth.new_key(args.key)
    key_id = await auth.issue(conn, key=key, scopes=scopes, subject=subject, holder=holder, label=args.label,
                              expires_at=args.expires, rate_per_minute=args.rate_per_minute)
    print(key)
    print(f"id {key_id} (scopes: {', '.join(scopes)}; the key is shown only now)", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.signals.cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
    key_parser = sub.add_parser(
        "keys", help="caregivers' data keys: master-key rotation, erased keys after a restore",
        description="Data keys are wrapped by the master keys in SIGNALS_ENCRYPTION_MASTER_KEYS "
                    "('id:base64', current first). See README, 'Key management'.")
    key_actions = key_parser.add_subparsers(dest="action", required=True)
    key_actions.add_parser(
        "rotate", help="re-wrap every data key under the current (first) master key",
        description="Put the new master key first in SIGNALS_ENCRYPTION_MASTER_KEYS, keep the old one "
                    "after it, restart signals, run this; then the old one can be removed.")
    key_actions.add_parser("list-erased", help="the ids of destroyed data keys (random ids, no personal data), "
                                               "one a line: keep a copy outside the database's backups")
    shred = key_actions.add_parser(
        "shred-erased", help="after restoring a backup: destroy again every data key erased since",
        description="Deletes restored data keys listed in erased_keys or in --file (the output of "
                    "list-erased kept from before the restore).")
    shred.add_argument("--file", type=Path, help="erased key ids, one a line")
    link = sub.add_parser("sign-in-link", help="a one-time link that signs a professional of the organisation in "
                                               "to the signal form (printed once; only its hash is stored)")
    link.add_argument("--organisation", required=True, help="the organisation's name")
    link.add_argument("--hours", type=float, default=24, help="how long the link works (default 24)")
    link.add_argument("--base-url", help="where the signals service is reached; default SIGNALS_PUBLIC_URL")
    args = parser.parse_args(argv)
    return run_cli(_run(args), args.database_url or SignalsSettings().database_url, "SIGNALS_DATABASE_URL")


if __name__ == "__main__":
    sys.exit(main())
