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
import sys

from services.municipalities.api import MIGRATIONS
from services.municipalities.config import MunicipalitiesSettings
from services.municipalities.districts import MUNICIPALITIES, is_known
from shared import auth, municipality_codes
from shared.commandline import Invocation, Tool

TOOL = Tool.for_service("python -m services.municipalities.cli", __doc__, MunicipalitiesSettings, MIGRATIONS)


def _municipality_code(value: str) -> str:
    if not municipality_codes.exists(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not the CBS code of an existing Dutch municipality")
    if not is_known(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a municipality served here (one of: {', '.join(sorted(MUNICIPALITIES))})"
        )
    return value


async def _issue_key(cmd: Invocation[MunicipalitiesSettings]) -> int:
    code = cmd.args.municipality
    return await auth.issue_from_command(
        cmd, [auth.Scope.MUNICIPALITY_READ], code, municipality_codes.municipalities()[code]
    )


issue = TOOL.command(
    "issue-key", _issue_key, help="issue a municipality's credential (printed once; only its hash is stored)"
)
issue.add_argument("--municipality", required=True, type=_municipality_code, help="CBS code, e.g. GM0327")
auth.add_issue_arguments(issue)
auth.add_key_admin_commands(TOOL)
main = TOOL.main


if __name__ == "__main__":
    sys.exit(main())
