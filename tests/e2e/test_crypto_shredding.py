"""Crypto-shredding end to end: after the privacy officer's erasure no personal value of the
caregiver is readable in any database, any topic (internal, DLQ, municipality) or log file of
the stack. The same scan finds the values where they legitimately remain (the mailbox, which
is outside the system) and a plaintext control planted in a database, so it cannot pass
vacuously; and before the erasure the sealed copies on the topics did decrypt to the values."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from deploy.run import DEMO_PRIVACY_OFFICER_KEY
from deploy.stack import SERVICES, Stack
from shared import crypto, sealing
from shared.contracts import Topics
from shared.internal import internal_headers
from tests.e2e.conftest import headers, make_signal, metric, post, query, wait_for_status
from tests.e2e.test_boundaries import _consumed, _propagated

pytestmark = pytest.mark.e2e

_TEXT_TYPES = ("text", "character varying", "jsonb", "json", "bytea", "ARRAY", "USER-DEFINED", "uuid")


async def scan_databases(stack: Stack, values: list[str]) -> dict[str, set[str]]:
    """Every table of every service database, every column that can hold text, as text:
    which values occur where (``service.table.column``)."""
    found: dict[str, set[str]] = {}
    for service in SERVICES:
        conn = await asyncpg.connect(stack.services[service].env[f"{service.upper()}_DATABASE_URL"])
        try:
            columns = await conn.fetch(
                """SELECT table_name, column_name, data_type FROM information_schema.columns
                   WHERE table_schema = 'public' AND data_type = ANY($1::text[])""",
                list(_TEXT_TYPES),
            )
            assert columns, f"{service}: no columns to scan"
            for column in columns:
                name = f'"{column["column_name"]}"'
                expr = f"encode({name}, 'escape')" if column["data_type"] == "bytea" else f"{name}::text"
                rows = await conn.fetch(f'SELECT {expr} FROM "{column["table_name"]}" WHERE {name} IS NOT NULL')
                for (text,) in rows:
                    for value in _occurring(text, values):
                        found.setdefault(value, set()).add(f"{service}.{column['table_name']}.{column['column_name']}")
        finally:
            await conn.close()
    return found


def _occurring(text: str, values: list[str]) -> list[str]:
    lowered = text.casefold()
    return [v for v in values if v.casefold() in lowered]


async def topic_records(bootstrap: str) -> tuple[list[str], list[Any]]:
    """Every topic, and every record of it from the start: assign() and seek, no consumer group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if not t.startswith("__")]
        partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > await consumer.position(tp)}
        records: list[Any] = []
        async with asyncio.timeout(60):
            while remaining:
                for tp, batch in (await consumer.getmany(*remaining, timeout_ms=1000)).items():
                    records += batch
                    if batch and batch[-1].offset + 1 >= ends[tp]:
                        remaining.discard(tp)
        return topics, records
    finally:
        await consumer.stop()


def _record_text(record: Any) -> str:
    parts = [record.value or b"", record.key or b"", *(v for _, v in record.headers or ())]
    return " ".join(p.decode(errors="replace") for p in parts)


def scan_topics(records: list[Any], values: list[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for record in records:
        for value in _occurring(_record_text(record), values):
            found.setdefault(value, set()).add(record.topic)
    return found


def scan_files(files: list[Path], values: list[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in files:
        for value in _occurring(path.read_text(errors="replace"), values):
            found.setdefault(value, set()).add(path.name)
    return found


async def _dead_lettered(bootstrap: str, event_id: str) -> None:
    async with asyncio.timeout(60):
        while not [
            r
            for r in (await topic_records(bootstrap))[1]
            if r.topic == Topics.dlq(Topics.SIGNALS) and event_id.encode() in r.value
        ]:
            await asyncio.sleep(0.5)


async def test_after_the_privileged_erasure_no_personal_value_is_readable_anywhere(
    client: httpx.AsyncClient,
    stack: Stack,
) -> None:
    tag = uuid.uuid4().hex[:8]
    signal = make_signal(
        caregiver__name=f"Zwaantje Vredeveld {tag}",
        caregiver__email=f"zwaantje-{tag}@voorbeeld.nl",
        caregiver__phone=f"+31 6 {int(tag, 16) % 10**8:08d}",
        note=f"Notitie over de thuissituatie {tag}",
        care_recipient__condition=f"dementie en ziekte-{tag}",
        source__reference=f"HIS-{tag}",
    )
    values = [
        signal["caregiver"]["name"],
        signal["caregiver"]["email"],
        signal["caregiver"]["phone"],
        signal["note"],
        signal["care_recipient"]["condition"],
        signal["source"]["reference"],
    ]
    first = (await post(client, signal)).json()["id"]
    second = (await post(client, signal | {"urgency": "high"})).json()["id"]
    for signal_id in (first, second):
        await wait_for_status(client, signal_id, {"notified"})

    # A sealed event of this caregiver that screening cannot handle, so a DLQ holds a copy too.
    [row] = await query(
        stack,
        "signals",
        "SELECT key, headers, body FROM outbox WHERE event_id = "
        "(SELECT event_id FROM signal_stages WHERE signal_id = $1 AND stage = 'received')",
        uuid.UUID(first),
    )
    poison = json.loads(row["body"])
    poison["event_id"], poison["payload"]["urgency"] = str(uuid.uuid4()), "not-an-urgency"
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(Topics.SIGNALS, json.dumps(poison).encode(), key=row["key"].encode())
    finally:
        await producer.stop()
    await _dead_lettered(stack.broker.bootstrap, poison["event_id"])

    # Before the erasure: the topics hold the values only as ciphertext, and it decrypts.
    _, records = await topic_records(stack.broker.bootstrap)
    assert not scan_topics(records, values), "personal values in plaintext on a topic"
    token = poison["payload"]["sealed"]["personal"]
    key_id = crypto.key_id_of(token)
    keys_url = f"{stack.services['signals'].url}/internal/keys/{key_id}"
    assert (await client.get(keys_url)).status_code == 403, "the key endpoint needs the internal token"
    answer = await client.get(keys_url, headers=internal_headers("dev-internal-token"))
    assert answer.status_code == 200
    opened = crypto.decrypt(base64.b64decode(answer.json()["key"]), token, sealing.PERSONAL_PURPOSE).decode()
    assert signal["caregiver"]["name"] in opened
    batch_url = f"{stack.services['signals'].url}/internal/keys"
    asked = {"key_ids": [key_id, "dk-unknown"]}
    assert (await client.post(batch_url, json=asked)).status_code == 403, "the batch needs the internal token too"
    batch = await client.post(batch_url, json=asked, headers=internal_headers("dev-internal-token"))
    assert batch.json() == {"keys": [answer.json()]}, "a consumer's batch gets the same key, the unknown one left out"
    sealed_on = {r.topic for r in records if key_id.encode() in (r.value or b"")}
    assert {Topics.SIGNALS, Topics.SCREENING, Topics.MATCHING, Topics.dlq(Topics.SIGNALS)} <= sealed_on, sealed_on

    officer = headers(DEMO_PRIVACY_OFFICER_KEY)
    identity = {"caregiver": {k: signal["caregiver"][k] for k in ("name", "birth_year", "postcode")}}
    erasure = await client.post("/v1/erasures", headers=officer, json=identity)
    assert erasure.status_code == 202, erasure.text
    await _propagated(client, erasure, DEMO_PRIVACY_OFFICER_KEY)
    await _consumed(stack, erasure.json()["id"])
    assert (await client.get(keys_url, headers=internal_headers("dev-internal-token"))).status_code == 404
    assert (await client.post(batch_url, json=asked, headers=internal_headers("dev-internal-token"))).json() == {
        "keys": []
    }, "a destroyed key is left out of a batch"

    # An event sealed under the destroyed key is dropped as erased, never dead-lettered.
    erased_before = metric(stack, "screening", "sts_messages_handled_total", outcome="erased")
    late = json.loads(row["body"]) | {"event_id": str(uuid.uuid4())}
    late["payload"]["signal_id"] = str(uuid.uuid4())  # not covered by the tombstone: only the key is gone
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(Topics.SIGNALS, json.dumps(late).encode(), key=row["key"].encode())
    finally:
        await producer.stop()
    async with asyncio.timeout(30):
        while metric(stack, "screening", "sts_messages_handled_total", outcome="erased") <= erased_before:
            await asyncio.sleep(0.2)

    # The scan: databases, topics (every one: internal, DLQ, municipality), log files.
    control = f"Controle-{tag}"
    notify_url = stack.services["notify"].env["NOTIFY_DATABASE_URL"]
    conn = await asyncpg.connect(notify_url)
    await conn.execute(f"CREATE TABLE scan_control_{tag} (value text)")
    await conn.execute(f"INSERT INTO scan_control_{tag} VALUES ($1)", control)
    try:
        in_databases = await scan_databases(stack, [*values, control])
    finally:
        await conn.execute(f"DROP TABLE scan_control_{tag}")
        await conn.close()
    assert in_databases.pop(control) == {f"notify.scan_control_{tag}.value"}, "the scan finds a planted value"
    assert not in_databases, f"personal values readable in databases: {in_databases}"

    topics, records = await topic_records(stack.broker.bootstrap)
    # Every topic this flow writes (casework's carries a consultant's actions: none here).
    assert {Topics.dlq(Topics.SIGNALS), *Topics.ALL} - {Topics.CASEWORK} <= {r.topic for r in records}
    assert any(t.startswith("municipality.") for t in topics), topics
    assert key_id.encode() in b"".join(r.value or b"" for r in records), "the ciphertext is still there"
    assert not scan_topics(records, values), "personal values readable on a topic"

    logs = sorted((stack.config.data_dir / "logs").glob("*.log"))
    assert {f"{s}.log" for s in SERVICES} <= {p.name for p in logs}
    assert not scan_files(logs, values), "personal values in the log files"

    # The mailbox is outside the system (the caregiver's own inbox): the scan finds them there.
    mails = sorted((stack.config.data_dir / "mailbox").glob("*.eml"))
    assert signal["caregiver"]["email"] in scan_files(mails, values)


async def test_a_new_consumer_handles_an_old_version_plaintext_event(client: httpx.AsyncClient, stack: Stack) -> None:
    """Rolling deploy: an event published by a signals service from before encryption
    (version 1, the personal fields in plaintext) is screened by the new screening."""
    signal = make_signal(care_recipient__condition="Dementie")
    signal_id = uuid.uuid4()
    payload = signal | {
        "signal_id": str(signal_id),
        "organisation_id": str(uuid.uuid4()),
        "organisation_name": "GP van voor de versleuteling",
        "received_at": "2026-11-25T10:00:00Z",
    }
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": "signal.received",
        "version": 1,
        "correlation_id": str(signal_id),
        "producer": "signals",
        "subject": f"old-{signal_id}",
        "payload": payload,
    }
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(Topics.SIGNALS, json.dumps(event).encode(), key=event["subject"].encode())
    finally:
        await producer.stop()
    async with asyncio.timeout(30):
        while not await query(
            stack, "matching", "SELECT 1 FROM outbox WHERE body::jsonb->'payload'->>'signal_id' = $1", str(signal_id)
        ):
            await asyncio.sleep(0.2)
    [(body,)] = await query(
        stack,
        "screening",
        "SELECT body FROM outbox WHERE "
        "body::jsonb->'payload'->>'signal_id' = $1 AND headers->>'event_type' = 'signal.screened'",
        str(signal_id),
    )
    screened = json.loads(body)["payload"]
    assert screened["result"]["recipient_groups"] == ["dementia"]
    assert screened["signal"]["note"] is None and screened["signal"]["care_recipient"]["condition"] is None
