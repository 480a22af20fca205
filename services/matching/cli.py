"""Import and export the social map (Open Referral HSDS 3.x).

    python -m services.matching.cli import services/matching/demo/social_map.json
    python -m services.matching.cli import path/to/datapackage-dir
    python -m services.matching.cli export social_map.json
    python -m services.matching.cli export path/to/dir --format csv

Import reads JSON (service_full or organization_full) or a tabular datapackage directory,
prints every problem as ``file:record:field: message``, and imports the records that could
be read, with a progress bar on a terminal. The last line is the summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from services.matching import hsds
from services.matching.config import MatchingSettings
from services.matching.repository import SocialMapRepository
from shared.commandline import Invocation, Refused, Tool, progress

MIGRATIONS = Path(__file__).parent / "migrations"
Command = Invocation[MatchingSettings]
TOOL = Tool.for_service("python -m services.matching.cli", __doc__, MatchingSettings, MIGRATIONS)


async def _import(cmd: Command) -> int:
    result = hsds.load(cmd.args.path)
    for issue in result.issues:
        print(f"{issue.file}:{issue.record}:{issue.field}: {issue.message}")
    if not result.services and result.issues:
        raise Refused(f"nothing imported: {len(result.issues)} issues", field=str(cmd.args.path))
    total = len(result.services)
    with progress("importing", total, unit="services") as bar:

        def advance(done: int) -> None:
            bar.update(done - bar.n)

        report = await SocialMapRepository(cmd.conn).import_records(result.services, advance)
    print(
        f"{total} services: {report.created} created, {report.updated} updated, {report.unchanged} unchanged; "
        f"organizations: {report.organizations_created} created, {report.organizations_updated} updated, "
        f"{report.organizations_unchanged} unchanged; {len(result.issues)} issues"
    )
    return 0


async def _export(cmd: Command) -> int:
    args = cmd.args
    result = hsds.parse_json(await SocialMapRepository(cmd.conn).stored_records(), "database")
    if args.format == "csv":
        hsds.write_datapackage(result.services, args.path)
    else:
        exported = [hsds.to_service_full(s) for s in result.services]
        args.path.write_text(json.dumps(exported, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(result.services)} services exported to {args.path}")
    return 0


TOOL.command("import", _import, help="import a JSON file or a datapackage directory").add_argument("path", type=Path)
exporting = TOOL.command("export", _export, help="export the stored social map")
exporting.add_argument("path", type=Path, help="a JSON file, or a directory for --format csv")
exporting.add_argument("--format", choices=["json", "csv"], default="json")
main = TOOL.main


if __name__ == "__main__":
    sys.exit(main())
