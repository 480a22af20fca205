"""Abuse limits through the running system (issue 12 parts 3-5): webhook URLs that point
inside are refused, a partner over its rate gets 429 with Retry-After, streams per
credential are capped, fields that reach e-mail headers refuse CR/LF and second addresses,
and keys are issued, listed and revoked by id through the CLIs (a revoked key never comes
back; a weak --key is refused)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from deploy.run import DEMO_MUNICIPALITY_KEYS, DEMO_ORGANISATIONS
from deploy.stack import REPO, Stack
from tests.e2e.conftest import headers, make_signal, post, query

pytestmark = pytest.mark.e2e

LEUSDEN_KEY = dict(DEMO_MUNICIPALITY_KEYS)["GM0327"]
GP_NAME = DEMO_ORGANISATIONS[0][0]


def cli(stack: Stack, service: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"services.{service}.cli", *args],
        env=stack.env_for(service),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def key_id_of(issued: subprocess.CompletedProcess[str]) -> str:
    """The id an ``issue-…`` command prints (on stderr; the key alone is on stdout)."""
    match = re.search(r"^id ([0-9a-f-]{36}) ", issued.stderr, re.M)
    assert match, issued.stderr
    return match.group(1)


@pytest.fixture
async def municipal(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.services["municipalities"].url, timeout=30) as c:
        yield c


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost/hook",  # a name resolving to 127.0.0.1
        "https://localhost:8443/hook",
        "https://[::1]/hook",
        "https://[::ffff:169.254.169.254]/",
    ],
)
async def test_a_webhook_pointing_inside_is_refused_with_a_generic_message(
    municipal: httpx.AsyncClient,
    url: str,
) -> None:
    hooks = "/v1/municipalities/GM0327/webhooks"
    response = await municipal.post(hooks, headers=headers(LEUSDEN_KEY), json={"url": url, "secret": "s" * 24})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["field"] == "url"
    assert error["message"] == "the webhook URL must use https and point at a public internet address"
    assert all(h["url"] != url for h in (await municipal.get(hooks, headers=headers(LEUSDEN_KEY))).json())


async def test_a_partner_over_its_rate_gets_429_with_retry_after(stack: Stack, client: httpx.AsyncClient) -> None:
    """A dedicated key with a low limit (``issue-key --rate-per-minute 3``), so other tests
    are not throttled; every other key keeps the scope's default."""
    issued = cli(
        stack, "signals", "issue-key", "--organisation", GP_NAME, "--rate-per-minute", "3", "--label", "rate test"
    )
    assert issued.returncode == 0, issued.stderr
    key, key_id = issued.stdout.strip(), key_id_of(issued)
    answers = [await post(client, make_signal(), key=key) for _ in range(4)]
    windows = await query(stack, "signals", "SELECT hits FROM rate_limit_windows WHERE bucket = $1", f"{key_id}:ingest")
    if len(windows) > 1:
        pytest.skip("the one-minute window turned between the requests; the count started again")
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
    assert "rate limit" in answers[-1].json()["detail"]
    assert (await post(client, make_signal())).status_code == 202, "the demo key is not throttled"


async def test_open_streams_per_credential_are_capped(stack: Stack) -> None:
    issued = cli(stack, "municipalities", "issue-key", "--municipality", "GM0307", "--label", "stream cap test")
    assert issued.returncode == 0, issued.stderr
    key = issued.stdout.strip()
    url = f"{stack.services['municipalities'].url}/v1/municipalities/GM0307/events"
    async with httpx.AsyncClient(timeout=30, headers=headers(key)) as http:
        streams = []
        try:
            for _ in range(3):  # MUNICIPALITIES_SSE_MAX_STREAMS_PER_CREDENTIAL
                stream = http.stream("GET", url)
                response = await stream.__aenter__()
                assert response.status_code == 200
                streams.append(stream)
            over = await http.get(url)
            assert over.status_code == 429 and int(over.headers["Retry-After"]) > 0
            await streams.pop().__aexit__(None, None, None)
            deadline = time.monotonic() + 10
            while True:  # the server notices the closed stream at its next poll
                async with http.stream("GET", url) as again:
                    if again.status_code == 200:
                        break
                assert time.monotonic() < deadline, "a closed stream's slot was not given back"
                await asyncio.sleep(0.2)
        finally:
            for stream in streams:
                await stream.__aexit__(None, None, None)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("caregiver__email", "a@example.nl,b@example.nl"),
        ("caregiver__email", "a@example.nl;b@example.nl"),
        ("caregiver__email", "a@example.nl\r\nBcc: c@example.nl"),
        ("caregiver__name", "Anna\r\nBcc: c@example.nl"),
        ("source__reference", "HIS-1\nX-Injected: yes"),
    ],
)
async def test_fields_that_reach_e_mail_headers_refuse_line_breaks_and_second_addresses(
    client: httpx.AsyncClient,
    path: str,
    value: str,
) -> None:
    response = await post(client, make_signal(**{path: value}))
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["detail"]] == [path.replace("__", ".")]


async def test_keys_are_listed_and_revoked_by_id_and_never_come_back(stack: Stack, client: httpx.AsyncClient) -> None:
    weak = cli(stack, "signals", "issue-key", "--organisation", GP_NAME, "--key", "letmein-please")
    assert weak.returncode == 2 and "--key" in weak.stderr and "at least 32 characters" in weak.stderr
    issued = cli(stack, "signals", "issue-key", "--organisation", GP_NAME, "--expires", "2099-12-31")
    key, key_id = issued.stdout.strip(), key_id_of(issued)
    assert (await post(client, make_signal(), key=key)).status_code == 202
    listed = cli(stack, "signals", "list-keys")
    assert key_id in listed.stdout and key not in listed.stdout and "2099-12-31" in listed.stdout
    assert cli(stack, "signals", "revoke-key", "--id", key_id).stdout.strip() == "revoked"
    deadline = time.monotonic() + 15  # SIGNALS_AUTH_CACHE_SECONDS
    while (status := (await post(client, make_signal(), key=key)).status_code) != 401:
        assert status == 202 and time.monotonic() < deadline, status
        await asyncio.sleep(0.5)
    again = cli(stack, "signals", "issue-key", "--organisation", GP_NAME, "--key", key)
    assert again.returncode == 2 and "revoked" in again.stderr
    assert (await post(client, make_signal(), key=key)).status_code == 401
