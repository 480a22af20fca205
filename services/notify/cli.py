"""Administer who notify talks to: provider keys, partners' contacts for updates, and the
caregiver consultant who takes escalations in a municipality; list and resend notifications.

    python -m services.notify.cli issue-provider-key --service-id <HSDS service id>
    python -m services.notify.cli list-keys
    python -m services.notify.cli revoke-key --id <key id>
    python -m services.notify.cli register-partner --organisation-id <id> --name "Huisartsenpraktijk" \\
        --email zorg@praktijk.example.nl [--webhook-url https://... --webhook-secret ...]
    python -m services.notify.cli set-consultant --municipality GM0327 --email consulent@gemeente.example.nl
    python -m services.notify.cli list --status failed [--channel email] [--since 2026-11-25T08:00]
    python -m services.notify.cli resend --id <notification id> [--id ...]
    python -m services.notify.cli resend --failed-since 2026-11-25T08:00 [--channel email]

A resent notification keeps its id, so the receiver sees the same Message-ID (e-mail),
X-Delivery-Id (webhook) or reference (SMS) as before, and gets a new retry window; the
running service sends it within a poll interval. An erased notification is never resent.

The organisation id is the one ``python -m services.signals.cli add-organisation`` printed.
A partner with a webhook gets its updates there (signed, see services/notify/WEBHOOKS.md);
otherwise by e-mail when it has an address; its status view always shows them.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import uuid
from datetime import UTC, datetime

import asyncpg

from services.notify import repository
from services.notify.api import MIGRATIONS
from services.notify.config import NotifySettings
from services.notify.domain import EMAIL, SMS, WEBHOOK
from services.notify.templates import LANGUAGES
from shared import auth, municipality_codes, webhooks
from shared.db import migrate
from shared.fields import email_problem


async def _run(args: argparse.Namespace) -> int:
    settings = NotifySettings()
    dsn = args.database_url or settings.database_url
    if getattr(args, "webhook_url", None):
        try:
            await webhooks.check_url(args.webhook_url, allow_http_hosts=settings.webhook_allow_http_hosts)
        except webhooks.UnsafeWebhookURL as exc:
            print(f"error: --webhook-url: {exc} ({exc.reason})", file=sys.stderr)
            return 2
    await migrate(dsn, MIGRATIONS)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            if args.command == "issue-provider-key":
                key = auth.new_key(args.key)
                key_id = await auth.issue(conn, key=key, scopes=[auth.Scope.PROVIDER], subject=args.service_id,
                                          holder=args.service_id, label=args.label, expires_at=args.expires,
                                          rate_per_minute=args.rate_per_minute)
                print(key)
                print(f"id {key_id} (the key is shown only now)", file=sys.stderr)
            elif args.command in ("list-keys", "revoke-key"):
                await auth.run_key_admin_command(conn, args.command, args)
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
            elif args.command == "list":
                rows = await repository.list_notifications(conn, args.status, args.channel, args.since, args.limit)
                _print_table(rows, args.status)
            elif args.command == "resend":
                rows = await repository.resend_failed(conn, args.id or [], args.failed_since, args.channel)
                for row in rows:
                    print(f"{row['id']}  {row['channel']:<8} {row['recipient_role']:<10} {row['template']}")
                print(f"{len(rows)} notification(s) will be sent again" if rows else
                      "nothing to resend (only failed, not erased notifications are resent)")
    except auth.KeyRefused as exc:
        print(f"error: --key: {exc}", file=sys.stderr)
        return 2
    finally:
        await conn.close()
    return 0


def _print_table(rows: list[asyncpg.Record], status: str) -> None:
    when = "failed at" if status == "failed" else "next attempt"
    print(f"{'id':<36}  {'channel':<8} {'role':<10} {'template':<26} {'tries':>5}  {when:<19}  last error")
    for r in rows:
        at = r["failed_at"] if status == "failed" else r["next_attempt_at"]
        error = (r["last_error"] or "").replace("\n", " ")
        print(f"{r['id']!s:<36}  {r['channel']:<8} {r['recipient_role']:<10} {r['template']:<26} "
              f"{r['attempts']:>5}  {at:%Y-%m-%d %H:%M:%S}  {error[:100]}")
    print(f"{len(rows)} {status} notification(s)")


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("an ISO 8601 time such as 2026-11-25T08:00 (UTC unless it has an offset)") \
            from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _municipality(value: str) -> str:
    if not municipality_codes.exists(value):
        raise argparse.ArgumentTypeError("the CBS code of an existing Dutch municipality, such as GM0327")
    return value


def _url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise argparse.ArgumentTypeError("an https URL")
    return value


def _email(value: str) -> str:
    if (problem := email_problem(value)) is not None:
        raise argparse.ArgumentTypeError(problem)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.notify.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="defaults to NOTIFY_DATABASE_URL")
    sub = parser.add_subparsers(dest="command", required=True)

    issue = sub.add_parser(
        "issue-provider-key", help="issue a provider API key (printed once; only its hash is stored)"
    )
    issue.add_argument("--service-id", required=True, help="the service's id on the social map")
    auth.add_issue_arguments(issue)
    auth.add_key_admin_commands(sub)

    partner = sub.add_parser("register-partner", help="set how a partner organisation hears about its signals")
    partner.add_argument("--organisation-id", required=True, type=uuid.UUID, help="its id in the signals service")
    partner.add_argument("--name", required=True)
    partner.add_argument("--email", type=_email, help="where status e-mails go (one address)")
    partner.add_argument("--webhook-url", type=_url, help="where signed webhooks go (preferred over e-mail)")
    partner.add_argument("--webhook-secret", help="the shared secret; a random one is made and printed when omitted")
    partner.add_argument("--language", choices=LANGUAGES, default="nl")

    consultant = sub.add_parser("set-consultant", help="who takes escalations in a municipality")
    consultant.add_argument("--municipality", required=True, type=_municipality)
    consultant.add_argument("--email", required=True, type=_email, help="one address")
    consultant.add_argument("--name")

    channels = (EMAIL, SMS, WEBHOOK)
    listing = sub.add_parser("list", help="list failed (or pending) notifications, oldest first")
    listing.add_argument("--status", choices=("failed", "pending"), default="failed")
    listing.add_argument("--channel", choices=channels)
    listing.add_argument("--since", type=_moment, help="failed (or, pending ones: planned) at or after this time")
    listing.add_argument("--limit", type=int, default=100)

    resend = sub.add_parser("resend", help="send failed notifications again (same id, new retry window)")
    which = resend.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=uuid.UUID, action="append", help="a notification id (repeatable)")
    which.add_argument("--failed-since", type=_moment, help="every notification that failed at or after this time")
    resend.add_argument("--channel", choices=channels, help="only notifications of this channel")
    return asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
