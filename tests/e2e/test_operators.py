"""The operator console against the running stack, in a real browser: sign in with a link the
CLI issued, see every service ready, see a poison event appear as a dead letter, inspect and
replay it from the page and see the outcome. And the monitoring of the compose deployment
uses only metrics the services really export."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid

import httpx
import yaml
from aiokafka import AIOKafkaProducer

from deploy.stack import REPO, Stack
from shared.config import ServiceSettings
from shared.contracts import Topics
from shared.internal import internal_headers
from tests.e2e.conftest import metric

MONITORED = ("signals", "screening", "matching", "notify", "municipalities")
MONITORING = REPO / "deploy" / "monitoring"
# Exporters' metrics (Kafka, PostgreSQL) and Prometheus' own `up` are not the services' to export.
EXPORTER_PREFIXES = ("kafka_", "pg_")


def issue_link(stack: Stack, name: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "services.operators.cli", "issue-operator", "--name", name],
        env=stack.env_for("operators"),
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def exported_names(text: str) -> set[str]:
    """Every sample name a /metrics page can carry, from its TYPE lines (a labelled metric
    with no sample yet still has one)."""
    names = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.M))  # the samples themselves
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        name = name.removesuffix("_total") if kind == "counter" else name
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_count", "_sum", "_created"),
            "summary": ("_count", "_sum", "_created"),
        }.get(kind, ("",))
        names.update(name + suffix for suffix in suffixes)
    return names


def monitoring_metric_names() -> set[str]:
    texts = [
        rule["expr"]
        for group in yaml.safe_load((MONITORING / "rules" / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    ]
    for path in (MONITORING / "grafana" / "dashboards").glob("*.json"):
        texts += [t["expr"] for p in json.loads(path.read_text())["panels"] for t in p.get("targets", [])]
    return {name for text in texts for name in re.findall(r"\b((?:sts|kafka|pg)_[a-z0-9_]+)\b", text)}


async def test_every_metric_of_the_dashboards_and_alerts_is_exported(stack: Stack) -> None:
    exported: set[str] = set()
    async with httpx.AsyncClient(timeout=10) as client:
        for service in stack.services.values():
            exported |= exported_names((await client.get(f"{service.url}/metrics")).text)
    used = monitoring_metric_names()
    assert len(used) > 20
    missing = {n for n in used if not n.startswith(EXPORTER_PREFIXES) and n not in exported}
    assert not missing, f"dashboards or alerts use metrics no service exports: {sorted(missing)}"


async def _produce_poison(stack: Stack, key: str) -> str:
    """A valid envelope whose payload breaks the contract: screening dead-letters it at once."""
    event_id = str(uuid.uuid4())
    body = json.dumps(
        {
            "event_id": event_id,
            "event_type": "signal.received",
            "correlation_id": "operators-e2e",
            "producer": "test",
            "subject": key,
            "payload": {"signal_id": "not-a-uuid"},
        }
    ).encode()
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(Topics.SIGNALS, body, key=key.encode())
    finally:
        await producer.stop()
    return event_id


async def _dead_letter_of(stack: Stack, event_id: str, timeout: float = 60) -> dict:
    url = f"{stack.services['screening'].url}/internal/dead-letters"
    token = ServiceSettings().internal_token  # the deployment's, as the stack's services read it
    async with httpx.AsyncClient(timeout=10, headers=internal_headers(token)) as client:
        for _ in range(int(timeout * 4)):
            rows = (await client.get(url, params={"include_resolved": "true"})).json()["dead_letters"]
            if found := [r for r in rows if r["event_id"] == event_id]:
                return found[0]
            await asyncio.sleep(0.25)
    raise AssertionError(f"screening never dead-lettered {event_id}")


async def test_the_console_shows_ready_services_and_replays_a_dead_letter(page, stack: Stack) -> None:
    console = stack.services["operators"].url
    link = issue_link(stack, f"E2E operator {uuid.uuid4().hex[:6]}")
    assert link.startswith(f"{console}/sign-in?token=")

    await page.goto(link)
    assert page.url.startswith(f"{console}/console")
    assert await page.locator("html").get_attribute("lang") == "nl"
    for name in MONITORED:
        ready = page.locator(f'#services tr[data-service="{name}"] td[data-ready]')
        await ready.and_(page.locator('[data-ready="true"]')).wait_for(timeout=60_000)
        assert "Gereed" in await ready.inner_text()
    await page.locator("#charts:not([hidden])").wait_for(timeout=20_000)  # the charts are drawn

    # A one-time link does not sign in twice.
    async with httpx.AsyncClient() as client:
        assert (await client.get(link)).status_code == 401

    dead_lettered = metric(stack, "screening", "sts_dlq_messages_total", topic=Topics.SIGNALS)
    event_id = await _produce_poison(stack, key=f"operators-e2e-{uuid.uuid4().hex[:8]}")
    dead = await _dead_letter_of(stack, event_id)
    row = page.locator(f'table.dead-letters[data-service="screening"] tr[data-dead-letter="{dead["id"]}"]')
    await row.wait_for(timeout=30_000)  # the live page shows it without a reload
    assert await row.get_attribute("data-status") == "dead"
    assert "payload.signal_id" in await row.inner_text()

    await row.get_by_role("link", name=re.compile("Bekijken")).click()
    await page.get_by_text(event_id, exact=True).wait_for()  # the event id field (the body has it too)
    await page.get_by_role("link", name=re.compile("Terug naar de console")).click()

    await (
        page.locator(f'table.dead-letters[data-service="screening"] tr[data-dead-letter="{dead["id"]}"]')
        .get_by_role("button", name=re.compile("Opnieuw aanbieden"))
        .click()
    )
    notice = page.locator("#notice")
    await notice.wait_for()
    assert f"Opnieuw aangeboden: screening:{dead['id']}" in await notice.inner_text()

    # The outcome: the record went back to screening, which dead-lettered it again (the poison is
    # still poison), so it is the same dead letter, dead once more.
    for _ in range(240):
        if metric(stack, "screening", "sts_dlq_messages_total", topic=Topics.SIGNALS) >= dead_lettered + 2:
            break
        await asyncio.sleep(0.25)
    else:
        raise AssertionError("the replayed record never came back to screening")
    again = await _dead_letter_of(stack, event_id)
    assert again["id"] == dead["id"] and again["status"] == "dead"
    await page.reload()
    await page.locator(f'tr[data-dead-letter="{dead["id"]}"][data-status="dead"]').wait_for()

    # English is available.
    await page.goto(f"{console}/console?lang=en")
    assert await page.locator("html").get_attribute("lang") == "en"
    await page.get_by_role("heading", name="Dead letters").wait_for()


async def test_the_console_refuses_without_a_session(stack: Stack) -> None:
    console = stack.services["operators"].url
    async with httpx.AsyncClient(base_url=console) as client:
        assert (await client.get("/console")).status_code == 401
        assert (await client.get("/sign-in", params={"token": "not-a-valid-token"})).status_code == 401
        replay = await client.post("/console/dead-letters/screening/1/replay")
        assert replay.status_code == 401
        # Nor do the services' operations endpoints open without the internal token.
        screening = stack.services["screening"].url
        assert (await client.get(f"{screening}/internal/dead-letters")).status_code == 403
