"""The access log against a real PostgreSQL: append-only, ids only, and the privacy
officer's CLI reads it across the services' databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest

from deploy.stack import REPO, ExternalPostgres, create_databases
from shared import access_log, cli
from shared.access_log import Action, Actor
from shared.db import migrate

pytestmark = pytest.mark.integration

PARTNER = Actor("partner", f"key:{uuid4()}", str(uuid4()))
OFFICER = Actor("privacy_officer", str(uuid4()), on_behalf_of="controller")


async def _migrated(url: str, service: str) -> asyncpg.Connection:
    await migrate(url, REPO / "services" / service / "migrations")
    return await asyncpg.connect(url)


async def test_lines_are_append_only_and_name_ids_only(database_url: str) -> None:
    conn = await _migrated(database_url, "signals")
    try:
        signal_id = uuid4()
        await access_log.record(conn, PARTNER, Action.CREATE, "signal", signal_id)
        await access_log.record(conn, PARTNER, Action.READ, "signal", signal_id)
        await access_log.record(conn, OFFICER, Action.ERASE, "caregiver", ["d1", "d2"], outcome="not_found")

        for statement in ("UPDATE access_log SET outcome = 'ok'", "DELETE FROM access_log", "TRUNCATE access_log"):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(statement)

        lines = await access_log.entries(conn, subject=str(signal_id))
        assert [(line["action"], line["actor_role"], line["organisation"]) for line in lines] == [
            ("create", "partner", PARTNER.organisation),
            ("read", "partner", PARTNER.organisation),
        ]
        # The credential is named by a prefix of its digest, never the key itself.
        assert lines[0]["actor_id"].startswith("key:") and "demo-gp-key" not in lines[0]["actor_id"]
        erased = await access_log.entries(conn, subject="d2")
        assert [(e["on_behalf_of"], e["outcome"]) for e in erased] == [("controller", "not_found")]
        assert await access_log.entries(conn, since=datetime.now(UTC) + timedelta(minutes=1)) == []
    finally:
        await conn.close()


async def test_the_cli_merges_every_services_log_and_says_which_it_could_not_read(
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = {service: f"t_{uuid4().hex[:12]}" for service in cli.SERVICES}
    await asyncio.to_thread(create_databases, postgres_url, list(names.values()))
    urls = {service: ExternalPostgres(postgres_url).dsn(name) for service, name in names.items()}
    for service, url in urls.items():
        monkeypatch.setenv(f"{service.upper()}_DATABASE_URL", url)
    referral = uuid4()
    signals = await _migrated(urls["signals"], "signals")
    notify = await _migrated(urls["notify"], "notify")
    try:
        await access_log.record(signals, PARTNER, Action.CREATE, "signal", referral)
        await access_log.record(notify, Actor("provider", "signed-link", "svc-1"), Action.UPDATE, "referral", referral)
        await access_log.record(notify, Actor("provider", "signed-link", "svc-1"), Action.READ, "referral", uuid4())
    finally:
        await signals.close()
        await notify.close()

    capsys.readouterr()  # the migrations' log lines
    code = await cli.TOOL.run(cli.TOOL.parser.parse_args(["access-log", "--subject", str(referral)]))

    out, err = capsys.readouterr()
    rows = out.splitlines()
    assert rows[0].split()[:3] == ["at", "service", "actor_role"]
    assert [row.split()[1:3] for row in rows[1:]] == [["signals", "partner"], ["notify", "provider"]]
    # Screening, matching, municipalities, casework and operators never ran their migrations
    # here: said, and not 0.
    assert code == 1 and err.count("no access log yet") == 5

    code = await cli.TOOL.run(cli.TOOL.parser.parse_args(["--service", "notify", "access-log"]))
    out, err = capsys.readouterr()
    assert code == 0 and err == "" and len(out.splitlines()) == 3
