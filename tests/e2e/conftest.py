"""The whole system as processes: the broker, PostgreSQL and the services, started
once per test session through the same code path as ``make run``."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from deploy.run import seed_casework, seed_demo
from deploy.stack import REPO, Stack, StackConfig, free_port

DEMO_SIGNAL = json.loads((REPO / "deploy" / "demo" / "signal.json").read_text())
GP_KEY = "demo-gp-key"
WIJKTEAM_KEY = "demo-wijkteam-key"
THUISZORG_KEY = "demo-thuiszorg-key"
ADMIN_TOKEN = "e2e-admin-token"
SMS_TOKEN = "e2e-sms-gateway-token"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, postgres_url: str, kafka: Any) -> Iterator[Stack]:
    config = StackConfig.ephemeral(tmp_path_factory.mktemp("stack"))
    config.postgres_url = postgres_url
    config.kafka_bootstrap = kafka.bootstrap
    config.kafka_idempotence = kafka.idempotence
    config.database_prefix = f"e2e_{uuid.uuid4().hex[:6]}_"
    config.extra_env = {
        "NOTIFY_MAILBOX_DIR": str(config.data_dir / "mailbox"),
        "SCREENING_CONSUMER_RETRY_BACKOFF_SECONDS": "0.05",
        "SIGNALS_OUTBOX_POLL_SECONDS": "0.5",
        "MATCHING_ADMIN_TOKEN": ADMIN_TOKEN,
        # Inbound SMS open (its token set), so the OpenAPI contract test meets its real answers.
        "NOTIFY_SMS_TOKEN": SMS_TOKEN,
        "SCREENING_RESCREEN_CHECK_SECONDS": "1",
        # Half the demo's minute: a record that finds no k is suppressed sooner.
        "MUNICIPALITIES_MAX_DELAY_SECONDS": "30",
        # One service with an internal listener: the set-up in which uvicorn would bring its
        # own plain-text log handlers (tests/e2e/test_json_logs.py).
        "OPERATORS_INTERNAL_PORT": str(free_port()),
    }
    stack = Stack(config, progress=print)

    def seed(s: Stack) -> None:
        seed_demo(s, print)
        seed_casework(s, print)

    try:
        stack.start(seed=seed)
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def api_url(stack: Stack) -> str:
    return stack.services["signals"].url


def headers(key: str = GP_KEY, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def make_signal(**changes: Any) -> dict[str, Any]:
    """The demo signal with a fresh caregiver (so it is not merged with others) and changes."""
    signal = json.loads(json.dumps(DEMO_SIGNAL))
    tag = uuid.uuid4().hex[:8]
    signal["caregiver"]["name"] = f"Mantelzorger {tag}"
    signal["caregiver"]["email"] = f"mz-{tag}@example.nl"
    for path, value in changes.items():
        target = signal
        *parents, leaf = path.split("__")
        for p in parents:
            target = target[p]
        target[leaf] = value
    return signal


async def post(client: httpx.AsyncClient, signal: dict[str, Any], key: str = GP_KEY, **extra: str) -> httpx.Response:
    return await client.post("/v1/signals", json=signal, headers=headers(key, **extra))


async def wait_for_status(
    client: httpx.AsyncClient,
    signal_id: str,
    statuses: set[str],
    timeout: float = 30,
    key: str = GP_KEY,
    until=None,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = await client.get(f"/v1/signals/{signal_id}", headers=headers(key))
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in statuses and (until is None or until(body)):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"signal {signal_id} did not reach {statuses} in {timeout}s: {body}")


async def query(stack: Stack, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.services[service].env[f"{service.upper()}_DATABASE_URL"])
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def case_of(stack: Stack, signal_id: str) -> uuid.UUID:
    """The case screening merged a signal into: internal, never shown to a partner."""
    [(case_id,)] = await query(stack, "signals", "SELECT case_id FROM signals WHERE id = $1", uuid.UUID(signal_id))
    return case_id


def metric(stack: Stack, service: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{stack.services[service].url}/metrics").text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def read_topic(bootstrap: str, topic: str, want, count: int = 1, timeout: float = 20) -> list[Any]:
    """Records of ``topic`` (from the start) for which ``want(record)`` holds."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=f"e2e-reader-{uuid.uuid4()}"
    )
    await consumer.start()
    found: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            while len(found) < count:
                record = await consumer.getone()
                if want(record):
                    found.append(record)
    finally:
        await consumer.stop()
    return found


@pytest.fixture
async def client(api_url: str) -> Any:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as c:
        yield c


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The OpenAPI contract test last: its generated calls change state (signals, erasures,
    webhooks, social-map imports), which must not meet the other tests' expectations."""
    items.sort(key=lambda item: item.path.name == "test_openapi_contract.py")
