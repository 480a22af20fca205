"""Administer the caregiver consultants' workbench.

    python -m services.casework.cli issue-consultant --municipality GM0327 --name "…" --email …
           [--fallback-region "Regionaal vangnet"]      # prints a one-time sign-in link
    python -m services.casework.cli sign-in-link --email …             # a new link
    python -m services.casework.cli set-region --name "Regio Drenthe" --municipality GM1680 …
    python -m services.casework.cli set-wmo-desk --municipality GM0327 --name "Wmo-loket …" --email …

A municipality with no consultant of its own lands in its region's fallback queue; a
municipality in no region lands in the operator's default region (CASEWORK_DEFAULT_REGION).
"""

from __future__ import annotations

import sys

from services.casework import service
from services.casework.api import MIGRATIONS
from services.casework.config import CaseworkSettings
from shared.commandline import Invocation, Refused, Tool, email, municipality
from shared.contracts import utcnow

Command = Invocation[CaseworkSettings]
TOOL = Tool.for_service("python -m services.casework.cli", __doc__, CaseworkSettings, MIGRATIONS)


async def _issue_consultant(cmd: Command) -> int:
    args = cmd.args
    consultant_id = await service.CaseworkUnitOfWork(cmd.conn).cases.add_consultant(
        args.name, args.email, args.municipality, args.fallback_region
    )
    print(await service.issue_sign_in_link(service.CaseworkUnitOfWork(cmd.conn), cmd.settings, consultant_id, utcnow()))
    return 0


async def _sign_in_link(cmd: Command) -> int:
    consultant = await service.CaseworkUnitOfWork(cmd.conn).cases.consultant_by_email(cmd.args.email)
    if consultant is None:
        raise Refused(f"no consultant with e-mail {cmd.args.email}", field="--email", code=1)
    print(await service.issue_sign_in_link(service.CaseworkUnitOfWork(cmd.conn), cmd.settings, consultant.id, utcnow()))
    return 0


async def _set_region(cmd: Command) -> int:
    await service.CaseworkUnitOfWork(cmd.conn).cases.set_region(cmd.args.name, cmd.args.municipality)
    print(f"region {cmd.args.name}: {', '.join(sorted(set(cmd.args.municipality)))}")
    return 0


async def _set_wmo_desk(cmd: Command) -> int:
    args = cmd.args
    await service.CaseworkUnitOfWork(cmd.conn).cases.set_wmo_desk(args.municipality, args.name, args.email)
    print(f"Wmo desk of {args.municipality}: {args.name} <{args.email}>")
    return 0


issue = TOOL.command(
    "issue-consultant", _issue_consultant, help="add (or update) a consultant and print a one-time sign-in link"
)
issue.add_argument(
    "--municipality", required=True, type=municipality, help="the consultant's municipality, e.g. GM0327"
)
issue.add_argument("--name", required=True, help="the consultant's name, shown in case histories")
issue.add_argument("--email", required=True, type=email, help="identifies the consultant (for new sign-in links)")
issue.add_argument("--fallback-region", help="also serve this region's fallback queue (the back-up)")
TOOL.command("sign-in-link", _sign_in_link, help="print a new one-time sign-in link for a consultant").add_argument(
    "--email", required=True
)
region = TOOL.command("set-region", _set_region, help="set the municipalities of a region (its fallback queue)")
region.add_argument("--name", required=True)
region.add_argument("--municipality", required=True, action="append", type=municipality, help="repeat for each")
desk = TOOL.command("set-wmo-desk", _set_wmo_desk, help="the municipality's Wmo desk, for hand-offs")
desk.add_argument("--municipality", required=True, type=municipality)
desk.add_argument("--name", required=True)
desk.add_argument("--email", required=True, type=email)
main = TOOL.main


if __name__ == "__main__":
    sys.exit(main())
