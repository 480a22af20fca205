"""Administer the operators of the console.

    python -m services.operators.cli issue-operator --name "Jan Jansen"
    python -m services.operators.cli revoke-operator --name "Jan Jansen"

``issue-operator`` prints a sign-in link (valid for OPERATORS_SIGN_IN_LINK_MINUTES, once):
opening it signs the operator in with a session cookie. Issue a new link whenever one is
needed; only digests of links and sessions are stored."""

from __future__ import annotations

import argparse
import sys

from services.operators import service
from services.operators.api import MIGRATIONS
from services.operators.config import OperatorsSettings
from shared.commandline import Invocation, Refused, Tool

Command = Invocation[OperatorsSettings]
TOOL = Tool.for_service("python -m services.operators.cli", __doc__, OperatorsSettings, MIGRATIONS)


def _token(value: str) -> str:
    if len(value) < 8:
        raise argparse.ArgumentTypeError("must be at least 8 characters")
    return value


async def _issue_operator(cmd: Command) -> int:
    args = cmd.args
    print(
        await service.issue_operator(
            service.OperatorsUnitOfWork(cmd.conn),
            cmd.settings,
            args.name,
            token=args.token,
            reusable=args.reusable,
            valid_minutes=args.valid_minutes,
        )
    )
    return 0


async def _revoke_operator(cmd: Command) -> int:
    if not await service.OperatorsUnitOfWork(cmd.conn).operators.revoke(cmd.args.name):
        raise Refused(f"no active operator {cmd.args.name!r}", field="--name", code=1)
    print("revoked")
    return 0


issue = TOOL.command(
    "issue-operator",
    _issue_operator,
    help="create an operator (or reuse one) and print a sign-in link",
    description="Create the operator if new and print a one-time sign-in link for it.",
)
issue.add_argument("--name", required=True, help="who the operator is (shown on the console)")
issue.add_argument("--token", type=_token, help="use this link token instead of a random one (demo and tests)")
issue.add_argument(
    "--reusable", action="store_true", help="the link signs in more than once until it expires (demo only)"
)
issue.add_argument(
    "--valid-minutes", type=float, help="how long the link is valid (default OPERATORS_SIGN_IN_LINK_MINUTES, 60)"
)
TOOL.command(
    "revoke-operator", _revoke_operator, help="revoke an operator: links and sessions stop working"
).add_argument("--name", required=True)
main = TOOL.main


if __name__ == "__main__":
    sys.exit(main())
