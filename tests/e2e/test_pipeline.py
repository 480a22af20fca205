"""Signals travel through all four services: delivery, idempotency, crashes and poison."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from deploy.stack import Stack
from shared.contracts import Topics
from tests.e2e.conftest import make_signal, metric, post, query, wait_for_status

pytestmark = pytest.mark.e2e


async def test_a_signal_reaches_notified_with_every_stage(client: httpx.AsyncClient, stack: Stack) -> None:
    signal_id = (await post(client, make_signal())).json()["id"]
    status = await wait_for_status(
        client, signal_id, {"notified"}, until=lambda b: any(n["recipient"] == "caregiver" for n in b["notifications"])
    )
    stages = [t["stage"] for t in status["timeline"]]
    assert stages[:3] == ["received", "screened", "matched"] and "notified" in stages
    screening = status["screening"]
    assert screening["instrument"] == "ediz_plus" and screening["score"] == 11
    assert screening["band"] == "heavy" and screening["risk_level"] == "overburdened"
    assert status["matches"], "the demo map has support in GM0327"
    caregiver = [n for n in status["notifications"] if n["recipient"] == "caregiver"]
    assert caregiver[0]["channel"] == "email" and caregiver[0]["status"] == "delivered"
    mails = list((stack.config.data_dir / "mailbox").glob("*.eml"))
    assert any(b"Steun voor u als mantelzorger" in m.read_bytes() for m in mails)


async def _bootstrap(stack: Stack) -> str:
    return stack.broker.bootstrap


async def test_a_redelivered_event_sends_nothing_twice(client: httpx.AsyncClient, stack: Stack) -> None:
    signal_id = (await post(client, make_signal())).json()["id"]
    await wait_for_status(client, signal_id, {"notified"})
    sent = "SELECT count(*) FROM notifications WHERE signal_id = $1"
    before = (await query(stack, "notify", sent, uuid.UUID(signal_id)))[0][0]
    # Publish matching's event for this signal once more, as a redelivery would.
    row = (
        await query(
            stack, "matching", "SELECT key, headers, body FROM outbox WHERE body::text LIKE $1", f"%{signal_id}%"
        )
    )[0]
    duplicates_before = metric(stack, "notify", "sts_messages_handled_total", outcome="duplicate")
    producer = AIOKafkaProducer(bootstrap_servers=await _bootstrap(stack))
    await producer.start()
    try:
        await producer.send_and_wait(
            Topics.MATCHING,
            row["body"].encode(),
            key=row["key"].encode(),
            headers=[(k, v.encode()) for k, v in json.loads(row["headers"]).items()],
        )
    finally:
        await producer.stop()
    for _ in range(100):
        if metric(stack, "notify", "sts_messages_handled_total", outcome="duplicate") > duplicates_before:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("notify never saw the redelivered event")
    assert (await query(stack, "notify", sent, uuid.UUID(signal_id)))[0][0] == before


async def test_poison_goes_to_the_dlq_and_the_rest_still_flows(client: httpx.AsyncClient, stack: Stack) -> None:
    poison = [
        b"not json at all",
        json.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "event_type": "signal.received",
                "correlation_id": "poison-test",
                "producer": "test",
                "subject": "x",
                "payload": {"signal_id": "not-a-uuid"},
            }
        ).encode(),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=await _bootstrap(stack))
    await producer.start()
    try:
        for body in poison:
            await producer.send_and_wait(Topics.SIGNALS, body, key=b"poison")
    finally:
        await producer.stop()
    signal_id = (await post(client, make_signal())).json()["id"]
    await wait_for_status(client, signal_id, {"notified"})

    consumer = AIOKafkaConsumer(
        Topics.dlq(Topics.SIGNALS),
        bootstrap_servers=await _bootstrap(stack),
        auto_offset_reset="earliest",
        group_id=f"dlq-reader-{uuid.uuid4()}",
    )
    await consumer.start()
    # Every group consuming the topic dead-letters the record on its own: wait for screening's.
    screening_group = f"screening.{Topics.SIGNALS}"
    found: dict[bytes, dict[str, str]] = {}
    try:
        async with asyncio.timeout(20):
            while len(found) < 2:
                record = await consumer.getone()
                headers = {k: v.decode() for k, v in record.headers}
                if record.value in poison and headers["dlq_consumer_group"] == screening_group:
                    found[record.value] = headers
    finally:
        await consumer.stop()
    for headers in found.values():
        assert headers["dlq_origin_topic"] == Topics.SIGNALS
        assert headers["dlq_error"]
    assert "payload.signal_id" in found[poison[1]]["dlq_error"]


async def test_kill_9_of_screening_loses_nothing_and_duplicates_nothing(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    screening = stack.services["screening"]
    reference = f"KILL-{uuid.uuid4().hex[:6]}"
    ids: list[str] = []

    async def post_all() -> None:
        for i in range(120):
            response = await post(client, make_signal(source__reference=f"{reference}-{i}"))
            assert response.status_code == 202
            ids.append(response.json()["id"])
            await asyncio.sleep(0.005)

    posting = asyncio.create_task(post_all())
    while len(ids) < 40:
        await asyncio.sleep(0.01)
    screening.kill()
    await asyncio.sleep(0.5)
    screening.start()
    await asyncio.to_thread(screening.wait_healthy)
    await posting

    for signal_id in ids:
        await wait_for_status(client, signal_id, {"notified"}, timeout=90)
    uuids = [uuid.UUID(i) for i in ids]
    screened = await query(
        stack,
        "screening",
        "SELECT count(*) FROM outbox WHERE headers->>'event_type' = 'signal.screened' "
        "AND (body::jsonb->'payload'->>'signal_id')::uuid = ANY($1)",
        uuids,
    )
    assert screened[0][0] == 120, "one screening event per signal, no more, no less"
    referrer = await query(
        stack,
        "notify",
        "SELECT signal_id, count(*) FROM notifications "
        "WHERE recipient_role = 'referrer' AND signal_id = ANY($1) GROUP BY 1",
        uuids,
    )
    assert len(referrer) == 120 and all(r["count"] == 1 for r in referrer)
