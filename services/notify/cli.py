"""Administer who notify talks to: provider keys, partners' contacts for updates, and the
caregiver consultant who takes escalations in a municipality.

    python -m services.notify.cli issue-provider-key --service-id <HSDS service id>
    python -m services.notify.cli register-partner --organisation-id <id> --name "Huisartsenpraktijk" \\
        --email zorg@praktijk.example.nl [--webhook-url https://... --webhook-secret ...]
    python -m services.notify.cli set-consultant --municipality GM0327 --email consulent@gemeente.example.nl

The organisation id is the one ``python -m services.signals.cli add-organisation`` printed.
A partner with a webhook gets its updates there (signed, see services/notify/WEBHOOKS.md);
otherwise by e-mail when it has an address; its status view always shows them.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import sys
import uuid

import asyncpg

from services.notify import repository
from services.notify.api import MIGRATIONS
from services.notify.config import NotifySettings
from services.notify.templates import LANGUAGES
from shared.db import migrate

_MUNICIPALITY = re.compile(r"^GM\d{4}$")


async def _run(args: argparse.Namespace) -> int:
    dsn = args.database_url or NotifySettings().database_url
    await migrate(dsn, MIGRATIONS)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            if args.command == "issue-provider-key":
                key = args.key or secrets.token_urlsafe(32)
                await repository.add_provider_key(conn, args.service_id, key, args.label)
                print(key)
            elif args.command == "revoke-provider-key":
                print("revoked" if await repository.revoke_provider_key(conn, args.key) else "no such active key")
            elif args.command == "register-partner":
                secret = args.webhook_secret
                if args.webhook_url and not secret:
                    secret = secrets.token_urlsafe(32)
                    print(f"webhook secret (give it to the partner, it is shown once): {secret}")
                await repository.upsert_partner(conn, args.organisation_id, args.name, args.email,
                                                args.webhook_url, secret if args.webhook_url else None,
                                                args.language)
                print(f"partner {args.name!r} ({args.organisation_id}) registered")
            elif args.command == "set-consultant":
                await repository.save_consultant(conn, args.municipality, args.email, args.name, "registered")
                print(f"caregiver consultant for {args.municipality}: {args.email}")
    finally:
        await conn.close()
    return 0


def _municipality(value: str) -> str:
    if not _MUNICIPALITY.match(value):
        raise argparse.ArgumentTypeError("a CBS municipality code such as GM0327")
    return value


def _url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise argparse.ArgumentTypeError("an http(s) URL")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.notify.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="defaults to NOTIFY_DATABASE_URL")
    sub = parser.add_subparsers(dest="command", required=True)

    issue = sub.add_parser("issue-provider-key", help="issue a provider API key (printed once; only its hash is stored)")
    issue.add_argument("--service-id", required=True, help="the service's id on the social map")
    issue.add_argument("--key", help="use this key instead of a random one (demo and tests)")
    issue.add_argument("--label", default="", help="a note on who holds the key")
    revoke = sub.add_parser("revoke-provider-key", help="revoke a provider API key")
    revoke.add_argument("--key", required=True)

    partner = sub.add_parser("register-partner", help="set how a partner organisation hears about its signals")
    partner.add_argument("--organisation-id", required=True, type=uuid.UUID, help="its id in the signals service")
    partner.add_argument("--name", required=True)
    partner.add_argument("--email", help="where status e-mails go")
    partner.add_argument("--webhook-url", type=_url, help="where signed webhooks go (preferred over e-mail)")
    partner.add_argument("--webhook-secret", help="the shared secret; a random one is made and printed when omitted")
    partner.add_argument("--language", choices=LANGUAGES, default="nl")

    consultant = sub.add_parser("set-consultant", help="who takes escalations in a municipality")
    consultant.add_argument("--municipality", required=True, type=_municipality)
    consultant.add_argument("--email", required=True)
    consultant.add_argument("--name")
    return asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
