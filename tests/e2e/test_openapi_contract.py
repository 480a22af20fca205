"""The published OpenAPI tells the truth (issue 17 item 6): schemathesis, with every check it
has, generates requests from each service's own ``/openapi.json`` and holds the answers to it
(status codes, error bodies, headers, content types, authentication, bad input refused, good
input accepted). It runs against the session stack with the credentials the other end-to-end
tests use: a partner key, a municipality key, a provider key, the social-map admin token, the
SMS gateway's token and the internal token (every service's /internal/dead-letters).

Its calls change state (signals posted, erasures, webhooks, social-map imports), so it runs on
credentials of its own, issued here without a rate limit (the shared demo keys keep their
count), for an organisation of its own, and after every other end-to-end test (ordered last in
``tests/e2e/conftest.py``): whatever it leaves behind cannot change what another test sees.

What the OpenAPI document cannot say (a rule that depends on stored state or on the network)
is listed, with its reason, in ``schemathesis.toml`` next to this file."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from deploy.stack import REPO, Stack
from shared import auth, internal
from shared.config import ServiceSettings
from tests.e2e.conftest import ADMIN_TOKEN, SMS_TOKEN

pytestmark = pytest.mark.e2e

# Generated cases per operation and phase: enough to meet every documented status, few enough
# that the seven services take a few minutes on a busy two-core machine.
MAX_EXAMPLES = int(os.environ.get("STS_SCHEMATHESIS_MAX_EXAMPLES", "10"))
SEED = 17
CONFIG = Path(__file__).with_name("schemathesis.toml")
INTERNAL_TOKEN_DEFAULT = ServiceSettings.model_fields["internal_token"].default
# The SMS gateway's inbound endpoint takes the gateway's token, not the provider key.
SMS_INBOUND = "/v1/sms/inbound"


@dataclass(frozen=True)
class Target:
    service: str
    key: str | None = None
    # Only this path (``only``), or all but these (``skip``): an operation that takes another
    # credential than the rest of its service runs on its own. (A header override in the config
    # file would reach every operation its filter matches, not only the one it names.)
    only: str | None = None
    skip: tuple[str, ...] = ()


async def _issue(stack: Stack, service: str, scopes: Sequence[auth.Scope], subject: str) -> str:
    """A fresh key with no rate limit to speak of, so generated traffic is never throttled and
    the demo keys' counts are not touched."""
    key = "sts_contract_" + uuid.uuid4().hex
    conn = await asyncpg.connect(stack.services[service].env[f"{service.upper()}_DATABASE_URL"])
    try:
        await auth.issue(
            conn,
            key=key,
            scopes=scopes,
            subject=subject,
            holder="openapi contract test",
            label="schemathesis",
            rate_per_minute=1_000_000,
        )
    finally:
        await conn.close()
    return key


def _organisation(stack: Stack) -> str:
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.signals.cli",
            "add-organisation",
            "--name",
            "OpenAPI contract",
            "--kind",
            "gp",
        ],
        env=stack.env_for("signals"),
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return added.stdout.strip().rsplit(": ", 1)[-1]


def _targets(stack: Stack) -> list[Target]:
    social_map = json.loads((REPO / "services" / "matching" / "demo" / "social_map.json").read_text())
    partner = asyncio.run(_issue(stack, "signals", auth.PARTNER_SCOPES, _organisation(stack)))
    municipality = asyncio.run(_issue(stack, "municipalities", [auth.Scope.MUNICIPALITY_READ], "GM0327"))
    provider = asyncio.run(_issue(stack, "notify", [auth.Scope.PROVIDER], social_map[0]["id"]))
    return [
        Target("signals", partner),
        Target("screening"),
        Target("matching", ADMIN_TOKEN),
        Target("notify", provider, skip=(SMS_INBOUND,)),
        Target("notify", SMS_TOKEN, only=SMS_INBOUND),
        Target("municipalities", municipality),
        Target("casework"),
        Target("operators"),
    ]


def _run(stack: Stack, target: Target, workdir: Path) -> subprocess.CompletedProcess[str]:
    # A service with an internal port publishes its OpenAPI document there only; every other
    # path answers on both ports.
    env = stack.env_for(target.service)
    internal_port = env.get(f"{target.service.upper()}_INTERNAL_PORT")
    url = f"http://127.0.0.1:{internal_port}" if internal_port else stack.services[target.service].url
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--no-color",
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "20",
    ]
    if target.key:
        command += ["--header", f"Authorization: Bearer {target.key}"]
    if target.only:
        command += ["--include-path", target.only]
    for path in target.skip:
        command += ["--exclude-path", path]
    # The operator endpoints every service has (/internal/dead-letters) too.
    token = env.get("STS_INTERNAL_TOKEN", INTERNAL_TOKEN_DEFAULT)
    command += ["--header", f"{internal.HEADER}: {token}"]
    # In a scratch directory: schemathesis keeps a cache where it runs.
    return subprocess.run(
        command,
        check=False,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ,
    )


def test_every_service_does_what_its_openapi_says(stack: Stack, tmp_path: Path) -> None:
    failed = []
    for target in _targets(stack):
        started = time.monotonic()
        result = _run(stack, target, tmp_path)
        print(f"--- schemathesis: {target.service} ({time.monotonic() - started:.0f} s, exit {result.returncode})")
        print(result.stdout[-20000:], result.stderr[-5000:])
        if result.returncode != 0:
            failed.append(target.service)
    assert not failed, f"schemathesis found failures in {failed}: see its report above"
