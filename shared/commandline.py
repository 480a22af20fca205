"""The one scaffold of every command-line tool: the services' ``cli`` modules, ``python -m
shared.cli`` and the ``deploy`` commands.

    TOOL = Tool.for_service("python -m services.x.cli", __doc__, XSettings, MIGRATIONS)
    issue = TOOL.command("issue", _issue, help="…")      # a subcommand with its own --help
    issue.add_argument("--name", required=True)

    def main(argv: list[str] | None = None) -> int:
        return TOOL.main(argv)

A handler is ``async def _issue(cmd: Invocation[XSettings]) -> int``: it gets the parsed
arguments, the service's settings and a connection to its database (migrated, in a
transaction that commits when the handler returns), prints its result (lists through
``cmd.show``: an aligned table, or JSON with ``--output json``) and returns the exit code.
What goes wrong reaches the operator as one line on stderr and exit code 2, never a
traceback: an unreachable database (``--database-url`` or ``<SERVICE>_DATABASE_URL``), a
setting that does not parse, a value the handler refuses (``raise Refused(…, field="--x")``)
or a file it cannot read. Progress of long runs goes through ``progress``: a tqdm bar on
stderr, drawn only on a terminal."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import asyncpg
from pydantic import ValidationError
from tqdm import tqdm

from shared import municipality_codes
from shared.config import ServiceSettings
from shared.db import CONNECTION_ERRORS, connect, connection_failure, migrate
from shared.fields import email_problem

S = TypeVar("S", bound=ServiceSettings)
OUTPUTS = ("table", "json")


class Refused(Exception):
    """A value the command cannot use, or a record it cannot find: ``error: <field>: <why>``."""

    def __init__(self, message: str, *, field: str | None = None, code: int = 2) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.code = code


def new_parser(prog: str, doc: str | None, **options: Any) -> argparse.ArgumentParser:
    """A parser whose ``--help`` shows the module docstring as written (its examples stay aligned)."""
    return argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter, **options
    )


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows as an aligned text table, long cells cut."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def render(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], output: str = "table", empty: str = "nothing to show"
) -> str:
    """Rows as a table (``empty`` when there are none), or as a JSON array of objects."""
    if output == "json":
        return json.dumps(
            [{c: row.get(c) for c in columns} for row in rows], default=_json_value, ensure_ascii=False, indent=2
        )
    return table(rows, columns) if rows else empty


def _json_value(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)  # UUIDs, decimals, enums


def instant(text: str) -> datetime:
    """argparse type: an ISO 8601 time, UTC unless it has an offset."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            "an ISO 8601 time such as 2026-11-25T08:00 (UTC unless it has an offset)"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def municipality(value: str) -> str:
    """argparse type: the CBS code of an existing Dutch municipality."""
    if not municipality_codes.exists(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not the CBS code of an existing Dutch municipality, such as GM0327"
        )
    return value


def email(value: str) -> str:
    """argparse type: one e-mail address."""
    if (problem := email_problem(value)) is not None:
        raise argparse.ArgumentTypeError(problem)
    return value


def emit_generated(text: str, checked_in: Path, root: Path, command: str, *, output: Path | None, check: bool) -> int:
    """A generator's way out: compare ``text`` with the checked-in copy (``check``: exit 1 when
    stale), write it to ``output``, or print it."""
    shown = checked_in.relative_to(root)
    if check:
        if checked_in.read_text() != text:
            print(f"{shown} is stale: run python -m {command} --output {shown}", file=sys.stderr)
            return 1
        print(f"{shown} is current")
        return 0
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def progress(label: str, total: int | None = None, *, unit: str = "it", bar_format: str | None = None) -> tqdm[Any]:
    """A progress bar on stderr, drawn only when stderr is a terminal (quiet in logs and pipes).

    ``bar.update(n)`` advances it; ``bar.write(line)`` prints a line above it; close it (or use
    it as a context manager) when done; ``bar_format="{desc}"`` makes it a status line."""
    return tqdm(
        total=total, desc=label, unit=unit, file=sys.stderr, disable=None, dynamic_ncols=True, bar_format=bar_format
    )


@dataclass(frozen=True)
class Invocation(Generic[S]):
    """What a handler gets: the arguments, the settings, and its database connection."""

    args: argparse.Namespace
    settings: S
    connection: asyncpg.Connection | None

    @property
    def conn(self) -> asyncpg.Connection:
        if self.connection is None:
            raise RuntimeError("this command was declared without a database (database=False)")
        return self.connection

    def show(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str],
        empty: str = "nothing to show",
        summary: str = "",
    ) -> None:
        """Print rows as the operator asked: an aligned table (then ``summary``), or JSON
        (``--output json``, the rows alone, so the output parses)."""
        print(render(rows, columns, self.args.output, empty))
        if summary and self.args.output == "table":
            print(summary)


Handler = Callable[[Invocation[S]], Awaitable[int]]


class Commands(Generic[S]):
    """A level of subcommands: each has a handler, or is a group of further subcommands."""

    def __init__(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self._subparsers = subparsers

    def command(
        self,
        name: str,
        handler: Handler[S],
        *,
        help: str,
        description: str | None = None,
        database: bool = True,
        transaction: bool = True,
        check: Handler[S] | None = None,
    ) -> argparse.ArgumentParser:
        """Add subcommand ``name``: ``database=False`` when the tool opens no database for it,
        ``transaction=False`` when it commits in steps of its own; ``check`` runs before the
        database is opened (a value that needs more than argparse to refuse it)."""
        parser = self._subparsers.add_parser(name, help=help, description=description or help)
        parser.set_defaults(handler=handler, database=database, transaction=transaction, check=check)
        return parser

    def group(
        self, name: str, *, help: str, description: str | None = None
    ) -> tuple[argparse.ArgumentParser, Commands[S]]:
        """Add subcommand ``name`` whose own subcommands follow it (``keys rotate``)."""
        parser = self._subparsers.add_parser(name, help=help, description=description or help)
        return parser, Commands(
            parser.add_subparsers(dest=f"{name.replace('-', '_')}_command", required=True, metavar="COMMAND")
        )


class Tool(Commands[S]):
    """A command-line tool over one database: parse, connect, run the handler, report."""

    def __init__(
        self,
        prog: str,
        doc: str | None,
        settings: Callable[[argparse.Namespace], S],
        database_env: Callable[[argparse.Namespace], str],
        migrations: Path | None = None,
        database_help: str = "",
        env_prefix: str = "",
    ) -> None:
        self.parser = new_parser(prog, doc)
        self.parser.add_argument(
            "--database-url",
            help=database_help or "the database (default: the service's setting, else the running `make run` stack's)",
        )
        self.parser.add_argument(
            "--output",
            choices=OUTPUTS,
            default="table",
            help="how lists are printed: an aligned table (default) or JSON",
        )
        super().__init__(self.parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
        self._settings = settings
        self._database_env = database_env
        self._migrations = migrations
        self._env_prefix = env_prefix.upper()  # names a setting that does not parse

    @classmethod
    def for_service(cls, prog: str, doc: str | None, settings: type[S], migrations: Path | None) -> Tool[S]:
        """The tool of a service whose settings class reads ``<PREFIX>DATABASE_URL``."""
        prefix = str(settings.model_config.get("env_prefix", "")).upper()
        env = f"{prefix}DATABASE_URL"
        return cls(
            prog,
            doc,
            lambda _: settings(),
            lambda _: env,
            migrations,
            env_prefix=prefix,
            database_help=f"the service's database (default {env}, else the running `make run` stack's)",
        )

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Parse ``argv`` and run: the ``main`` of a ``python -m`` entry point."""
        args = self.parser.parse_args(argv)
        try:
            return asyncio.run(self.run(args))
        except KeyboardInterrupt:
            return 130

    async def run(self, args: argparse.Namespace) -> int:
        """Run parsed arguments; every expected failure is one line on stderr and exit code 2."""
        try:
            settings = self._settings(args)
        except ValidationError as exc:
            return _fail(
                "\n".join(
                    f"error: {self._env_prefix}{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
                    for e in exc.errors(include_input=False)
                )
            )
        except Refused as exc:
            return _fail(f"error: {exc}", exc.code)
        if args.check is not None and (code := await _handle(Invocation(args, settings, None), args.check)):
            return code
        if not args.database:
            return await _handle(Invocation(args, settings, None))
        dsn = args.database_url or settings.database_url
        try:
            if self._migrations is not None:
                await migrate(dsn, self._migrations)
            conn = await connect(dsn)
        except CONNECTION_ERRORS as exc:
            return _fail(connection_failure(dsn, self._database_env(args), exc))
        try:
            if not args.transaction:
                return await _handle(Invocation(args, settings, conn))
            async with conn.transaction():
                code = await _handle(Invocation(args, settings, conn))
                if code:
                    raise _RollBack(code)  # a refused command leaves nothing half done
                return code
        except _RollBack as stop:
            return stop.code
        except _LOST_CONNECTION as exc:
            return _fail(connection_failure(dsn, self._database_env(args), exc))
        finally:
            await conn.close()


class _RollBack(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


# The database going away while a handler runs (a file the handler cannot read is an OSError
# too, so the plain OSError is reported by _handle as such).
_LOST_CONNECTION = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, ConnectionError, TimeoutError)


async def _handle(invocation: Invocation[S], handler: Handler[S] | None = None) -> int:
    handler = handler or invocation.args.handler
    try:
        return await handler(invocation)
    except Refused as exc:
        return _fail(f"error: {exc}", exc.code)
    except _LOST_CONNECTION:
        raise
    except OSError as exc:  # a file named on the command line
        return _fail(f"error: {exc.filename or ''}: {exc.strerror or exc}")


def _fail(line: str, code: int = 2) -> int:
    print(line, file=sys.stderr)
    return code
