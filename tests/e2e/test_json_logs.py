"""Every line the services write to their log files is one JSON object, without ANSI colour
codes: our own lines and those of the libraries (FastStream, uvicorn, httpx, aiokafka), and a
library's line written while an event is handled carries the event's correlation id.

The session stack runs operators with an internal listener (tests/e2e/conftest.py), the
set-up in which uvicorn would install its own plain-text handlers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx

from deploy.stack import SERVICES, Stack
from tests.e2e.conftest import make_signal, post, wait_for_status

ANSI_ESCAPE = "\x1b"


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def _parsed(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    """Each service's log lines as objects; fails on the first line that is not one."""
    parsed: dict[str, list[dict[str, Any]]] = {}
    for service in SERVICES:
        path = stack.config.data_dir / "logs" / f"{service}.log"
        parsed[service] = []
        for number, line in enumerate(_lines(path), start=1):
            assert ANSI_ESCAPE not in line, f"{path.name}:{number} has ANSI codes: {line[:200]!r}"
            try:
                value = json.loads(line)
            except ValueError:
                raise AssertionError(f"{path.name}:{number} is not JSON: {line[:200]!r}") from None
            assert isinstance(value, dict) and "event" in value and "level" in value, f"{path.name}:{number}"
            parsed[service].append(value)
    return parsed


async def test_every_line_of_every_service_log_is_json_with_the_correlation_id(
    stack: Stack,
    client: httpx.AsyncClient,
) -> None:
    correlation_id = f"json-logs-{uuid.uuid4()}"
    response = await post(client, make_signal(), **{"X-Correlation-ID": correlation_id})
    assert response.status_code == 202, response.text
    await wait_for_status(client, response.json()["id"], {"notified"}, timeout=60)

    parsed = _parsed(stack)
    loggers = {line.get("logger", "") for lines in parsed.values() for line in lines}
    # The libraries' lines are in the files (and passed the checks above), not only ours.
    assert any(name.startswith("faststream") for name in loggers), loggers
    assert "uvicorn.error" in loggers, loggers
    assert any(line.get("logger") == "uvicorn.error" for line in parsed["operators"])
    # A library's line (it has a "logger") written while a service handled the signal's events.
    carried = {
        service
        for service, lines in parsed.items()
        if service != "signals"
        for line in lines
        if line.get("correlation_id") == correlation_id and "logger" in line
    }
    assert carried, "no library line of the consuming services carried the correlation id"
    assert all(
        line["service"] == service
        for service, lines in parsed.items()
        for line in lines
        if line.get("logger") != "uncaught"
    )
