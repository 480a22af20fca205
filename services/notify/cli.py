"""Administer who notify talks to: provider keys, partners' contacts for updates, and the
caregiver consultant who takes escalations in a municipality; list and resend notifications.

    python -m services.notify.cli issue-provider-key --service-id <HSDS service id>
    python -m services.notify.cli list-keys
    python -m services.notify.cli revoke-key --id <key id>
    python -m services.notify.cli register-partner --organisation-id <id> --name "Huisartsenpraktijk" \\
        --email zorg@praktijk.example.nl [--webhook-url https://... --webhook-secret ...]
    python -m services.notify.cli set-consultant --municipality GM0327 --email consulent@gemeente.example.nl
    python -m services.notify.cli list --status failed [--channel email] [--since 2026-11-25T08:00] [--output json]
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
import secrets
import sys
import uuid

from services.notify.api import MIGRATIONS
from services.notify.config import NotifySettings
from services.notify.domain import EMAIL, SMS, WEBHOOK
from services.notify.repository import Contacts, Notifications
from services.notify.templates import LANGUAGES
from shared import auth, webhooks
from shared.commandline import Invocation, Refused, Tool, email, instant, municipality

Command = Invocation[NotifySettings]
TOOL = Tool.for_service("python -m services.notify.cli", __doc__, NotifySettings, MIGRATIONS)


async def _issue_provider_key(cmd: Command) -> int:
    return await auth.issue_from_command(cmd, [auth.Scope.PROVIDER], cmd.args.service_id, cmd.args.service_id)


async def _check_webhook(cmd: Command) -> int:
    if cmd.args.webhook_url:
        try:
            await webhooks.check_url(cmd.args.webhook_url, allow_http_hosts=cmd.settings.webhook_allow_http_hosts)
        except webhooks.UnsafeWebhookURL as exc:
            raise Refused(f"{exc} ({exc.reason})", field="--webhook-url") from exc
    return 0


async def _register_partner(cmd: Command) -> int:
    args = cmd.args
    secret = args.webhook_secret
    if args.webhook_url and not secret:
        secret = secrets.token_urlsafe(32)
        print(f"webhook secret (give it to the partner, it is shown once): {secret}")
    await Contacts(cmd.conn).upsert_partner(
        args.organisation_id,
        args.name,
        args.email,
        args.webhook_url,
        secret if args.webhook_url else None,
        args.language,
    )
    print(f"partner {args.name!r} ({args.organisation_id}) registered")
    return 0


async def _set_consultant(cmd: Command) -> int:
    args = cmd.args
    await Contacts(cmd.conn).save_consultant(args.municipality, args.email, args.name, "registered")
    print(f"caregiver consultant for {args.municipality}: {args.email}")
    return 0


async def _list(cmd: Command) -> int:
    args = cmd.args
    rows = await Notifications(cmd.conn).listing(args.status, args.channel, args.since, args.limit)
    when = "failed_at" if args.status == "failed" else "next_attempt_at"
    cmd.show(
        rows,
        ("id", "channel", "recipient_role", "template", "attempts", when, "last_error"),
        empty=f"no {args.status} notifications",
        summary=f"{len(rows)} {args.status} notification(s)",
    )
    return 0


async def _resend(cmd: Command) -> int:
    args = cmd.args
    rows = await Notifications(cmd.conn).resend_failed(args.id or [], args.failed_since, args.channel)
    cmd.show(
        rows,
        ("id", "channel", "recipient_role", "template"),
        empty="nothing to resend (only failed, not erased notifications are resent)",
        summary=f"{len(rows)} notification(s) will be sent again" if rows else "",
    )
    return 0


def _url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise argparse.ArgumentTypeError("an https URL")
    return value


issue = TOOL.command(
    "issue-provider-key", _issue_provider_key, help="issue a provider API key (printed once; only its hash is stored)"
)
issue.add_argument("--service-id", required=True, help="the service's id on the social map")
auth.add_issue_arguments(issue)
auth.add_key_admin_commands(TOOL)

partner = TOOL.command(
    "register-partner",
    _register_partner,
    check=_check_webhook,
    help="set how a partner organisation hears about its signals",
)
partner.add_argument("--organisation-id", required=True, type=uuid.UUID, help="its id in the signals service")
partner.add_argument("--name", required=True)
partner.add_argument("--email", type=email, help="where status e-mails go (one address)")
partner.add_argument("--webhook-url", type=_url, help="where signed webhooks go (preferred over e-mail)")
partner.add_argument("--webhook-secret", help="the shared secret; a random one is made and printed when omitted")
partner.add_argument("--language", choices=LANGUAGES, default="nl")

consultant = TOOL.command("set-consultant", _set_consultant, help="who takes escalations in a municipality")
consultant.add_argument("--municipality", required=True, type=municipality)
consultant.add_argument("--email", required=True, type=email, help="one address")
consultant.add_argument("--name")

channels = (EMAIL, SMS, WEBHOOK)
listing = TOOL.command("list", _list, help="list failed (or pending) notifications, oldest first")
listing.add_argument("--status", choices=("failed", "pending"), default="failed")
listing.add_argument("--channel", choices=channels)
listing.add_argument("--since", type=instant, help="failed (or, pending ones: planned) at or after this time")
listing.add_argument("--limit", type=int, default=100)

resend = TOOL.command("resend", _resend, help="send failed notifications again (same id, new retry window)")
which = resend.add_mutually_exclusive_group(required=True)
which.add_argument("--id", type=uuid.UUID, action="append", help="a notification id (repeatable)")
which.add_argument("--failed-since", type=instant, help="every notification that failed at or after this time")
resend.add_argument("--channel", choices=channels, help="only notifications of this channel")
main = TOOL.main


if __name__ == "__main__":
    sys.exit(main())
