"""The CLI scaffold (shared.commandline): one line and exit code 2 for what the operator can
fix, tables or JSON from one helper, progress only on a terminal. The database is a closed
port here: the scaffold's answer to an unreachable one is what is tested."""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime
from uuid import UUID

import pytest
from pydantic_settings import SettingsConfigDict

from deploy.stack import free_port
from shared.commandline import Invocation, Refused, Tool, progress, render
from shared.config import ServiceSettings


class _Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLITEST_", extra="ignore")


def _tool() -> tuple[Tool[_Settings], list[str]]:
    ran: list[str] = []
    tool = Tool.for_service("clitest", "A test tool.", _Settings, None)

    async def handler(cmd: Invocation[_Settings]) -> int:
        ran.append(cmd.args.command)
        return 0

    async def refuse(cmd: Invocation[_Settings]) -> int:
        raise Refused("not like this", field="--value")

    tool.command("plain", handler, help="needs the database")
    tool.command("offline", handler, help="needs none", database=False)
    tool.command("checked", handler, help="refused before the database", check=refuse)
    return tool, ran


def test_an_unreachable_database_is_one_line_naming_the_setting(capsys: pytest.CaptureFixture[str]) -> None:
    tool, ran = _tool()
    url = f"postgresql://user:secret@127.0.0.1:{free_port()}/none"
    assert tool.main(["--database-url", url, "plain"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot reach the database")
    assert "CLITEST_DATABASE_URL" in err and "secret" not in err and "Traceback" not in err
    assert ran == []


def test_a_refused_value_and_a_wrong_setting_are_one_line_each(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tool, ran = _tool()
    assert tool.main(["--database-url", f"postgresql://127.0.0.1:{free_port()}/x", "checked"]) == 2
    assert capsys.readouterr().err == "error: --value: not like this\n"
    monkeypatch.setenv("CLITEST_PORT", "eighty")
    assert tool.main(["offline"]) == 2
    assert capsys.readouterr().err.startswith("error: CLITEST_PORT: ")
    monkeypatch.delenv("CLITEST_PORT")
    assert tool.main(["offline"]) == 0 and ran == ["offline"]


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    tool, _ = _tool()
    for argv in (["--help"], ["plain", "--help"]):
        with pytest.raises(SystemExit) as done:
            tool.main(argv)
        assert done.value.code == 0
    assert "--output {table,json}" in capsys.readouterr().out


def test_rows_render_as_a_table_or_as_json() -> None:
    rows = [{"id": UUID(int=1), "at": datetime(2026, 11, 25, 8, tzinfo=UTC), "note": None}]
    assert render(rows, ("id", "at", "note")).splitlines()[1].split() == [
        "00000000-0000-0000-0000-000000000001",
        "2026-11-25T08:00:00+00:00",
        "-",
    ]
    assert json.loads(render(rows, ("id", "at", "note"), "json")) == [
        {"id": "00000000-0000-0000-0000-000000000001", "at": "2026-11-25T08:00:00+00:00", "note": None}
    ]
    assert render([], ("id",), empty="no keys") == "no keys"
    assert render([], ("id",), "json") == "[]"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_is_drawn_on_a_terminal_only(terminal: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    with progress("importing", 3, unit="services") as bar:
        bar.update(3)
    drawn = stream.getvalue()
    assert ("importing: 100%" in drawn and "3/3" in drawn) if terminal else drawn == ""
