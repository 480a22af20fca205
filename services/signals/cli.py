"""Administer partner organisations and their API keys, and the privacy officer's credential.

    python -m services.signals.cli add-organisation --name "Huisartsenpraktijk" --kind gp
    python -m services.signals.cli issue-key --organisation "Huisartsenpraktijk"
    python -m services.signals.cli issue-privacy-officer-key --name "Privacy officer (controller)"
    python -m services.signals.cli list-keys
    python -m services.signals.cli revoke-key --id <key id>
    python -m services.signals.cli erasure-log [--output json]
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

import sys
import uuid
from pathlib import Path

from services.signals import keys
from services.signals.api import MIGRATIONS
from services.signals.config import SignalsSettings
from services.signals.domain import Organisation
from services.signals.repository import SignalsRepository
from services.signals.sessions import new_token
from shared import auth
from shared.commandline import Invocation, Refused, Tool
from shared.contracts import SourceKind
from shared.crypto import MasterKeyring

Command = Invocation[SignalsSettings]
TOOL = Tool.for_service("python -m services.signals.cli", __doc__, SignalsSettings, MIGRATIONS)
ERASURE_COLUMNS = (
    "requested_at",
    "erasure_id",
    "role",
    "requester",
    "requested_by",
    "scope",
    "identified_by",
    "signals_erased",
    "subjects",
)


async def _organisation(cmd: Command) -> Organisation:
    organisation = await SignalsRepository(cmd.conn).organisation_by_name(cmd.args.organisation)
    if organisation is None:
        raise Refused(f"no organisation named {cmd.args.organisation!r}", field="--organisation")
    return organisation


async def _add_organisation(cmd: Command) -> int:
    org_id = await SignalsRepository(cmd.conn).upsert_organisation(cmd.args.name, cmd.args.kind)
    print(f"organisation {cmd.args.name!r} ({cmd.args.kind}): {org_id}")
    return 0


async def _issue_key(cmd: Command) -> int:
    organisation = await _organisation(cmd)
    return await auth.issue_from_command(cmd, auth.PARTNER_SCOPES, str(organisation.id), organisation.name)


async def _issue_privacy_officer_key(cmd: Command) -> int:
    return await auth.issue_from_command(cmd, [auth.Scope.PRIVACY_OFFICER], str(uuid.uuid4()), cmd.args.name)


async def _sign_in_link(cmd: Command) -> int:
    organisation = await _organisation(cmd)
    token, token_hash = new_token()
    await SignalsRepository(cmd.conn).add_sign_in_token(token_hash, organisation.id, cmd.args.hours)
    settings = cmd.settings
    base = (cmd.args.base_url or settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    print(f"{base}/melden/link/{token}")
    return 0


async def _erasure_log(cmd: Command) -> int:
    rows = [
        dict(row) | {"subjects": ",".join(d[:16] for d in row["subject_digests"])}
        for row in await SignalsRepository(cmd.conn).erasure_log(cmd.args.limit)
    ]
    cmd.show(rows, ERASURE_COLUMNS, empty="no erasures")
    return 0


async def _rotate(cmd: Command) -> int:
    keyring = MasterKeyring.parse(cmd.settings.encryption_master_keys.get_secret_value())
    count = await keys.rotate(cmd.conn, keyring)
    print(
        f"re-wrapped {count} data key(s) under master key {keyring.current!r}; once every deployment "
        "runs with it, the older master keys can be removed from SIGNALS_ENCRYPTION_MASTER_KEYS"
    )
    return 0


async def _list_erased(cmd: Command) -> int:
    print("\n".join(await keys.erased_key_ids(cmd.conn)))
    return 0


async def _shred_erased(cmd: Command) -> int:
    more = [line.strip() for line in cmd.args.file.read_text().splitlines() if line.strip()] if cmd.args.file else []
    print(f"destroyed {await keys.shred_erased(cmd.conn, more)} restored data key(s) of erased caregivers")
    return 0


add = TOOL.command("add-organisation", _add_organisation, help="create or update a partner organisation")
add.add_argument("--name", required=True)
add.add_argument("--kind", required=True, choices=[k.value for k in SourceKind])
issue = TOOL.command("issue-key", _issue_key, help="issue an API key (printed once; only its hash is stored)")
issue.add_argument("--organisation", required=True, help="the organisation's name")
auth.add_issue_arguments(issue)
officer = TOOL.command(
    "issue-privacy-officer-key",
    _issue_privacy_officer_key,
    help="issue the privacy officer's credential, the only one that erases a person "
    "across organisations (printed once; only its hash is stored)",
)
officer.add_argument("--name", required=True, help="who holds it, e.g. the controller's privacy officer")
auth.add_issue_arguments(officer)
auth.add_key_admin_commands(TOOL)
TOOL.command(
    "erasure-log",
    _erasure_log,
    help="the append-only erasure log, newest first (subjects as pseudonym digests, no personal data)",
).add_argument("--limit", type=int, default=100)
_, key_actions = TOOL.group(
    "keys",
    help="caregivers' data keys: master-key rotation, erased keys after a restore",
    description="Data keys are wrapped by the master keys in SIGNALS_ENCRYPTION_MASTER_KEYS "
    "('id:base64', current first). See README, 'Key management'.",
)
key_actions.command(
    "rotate",
    _rotate,
    help="re-wrap every data key under the current (first) master key",
    description="Put the new master key first in SIGNALS_ENCRYPTION_MASTER_KEYS, keep the old one "
    "after it, restart signals, run this; then the old one can be removed.",
)
key_actions.command(
    "list-erased",
    _list_erased,
    help="the ids of destroyed data keys (random ids, no personal "
    "data), one a line: keep a copy outside the database's backups",
)
key_actions.command(
    "shred-erased",
    _shred_erased,
    help="after restoring a backup: destroy again every data key erased since",
    description="Deletes restored data keys listed in erased_keys or in --file (the output of "
    "list-erased kept from before the restore).",
).add_argument("--file", type=Path, help="erased key ids, one a line")
link = TOOL.command(
    "sign-in-link",
    _sign_in_link,
    help="a one-time link that signs a professional of the "
    "organisation in to the signal form (printed once; only its hash is stored)",
)
link.add_argument("--organisation", required=True, help="the organisation's name")
link.add_argument("--hours", type=float, default=24, help="how long the link works (default 24)")
link.add_argument("--base-url", help="where the signals service is reached; default SIGNALS_PUBLIC_URL")
main = TOOL.main


if __name__ == "__main__":
    sys.exit(main())
