"""Municipalities through the whole system: 30 similar signals come out as k-anonymous
groups on the municipality's Kafka topic (read by an external librdkafka client) and on its
SSE stream, and a scan finds nothing identifying of the signals posted; 3 similar signals
release nothing; a credential reads only its own municipality; an unknown municipality gets
no topic; an erasure leaves nothing identifying in any service's database."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from deploy.run import DEMO_MUNICIPALITY_KEYS
from deploy.stack import SERVICES, Stack
from tests.e2e.conftest import THUISZORG_KEY, headers, make_signal, post, query, wait_for_status

pytestmark = pytest.mark.e2e

KEYS = dict(DEMO_MUNICIPALITY_KEYS)
LEUSDEN, AMERSFOORT, BUNSCHOTEN = "GM0327", "GM0307", "GM0313"
RANDOM_IDS = ("event_id", "correlation_id")  # uuids: compared whole, not searched in


def identifying_signal(municipality: str, postcode: str, **changes: Any) -> dict[str, Any]:
    """A signal whose every identifying field is unique to it. Postcode letters are not hex
    digits, so a scan of raw bytes cannot find them inside a pseudonym by chance."""
    tag = uuid.uuid4().hex[:8]
    return make_signal(
        **{
            "caregiver__name": f"Mantelzorger {tag}",
            "caregiver__email": f"mz-{tag}@example.nl",
            "caregiver__phone": f"+3161{int(tag, 16) % 10_000_000:07d}",
            "caregiver__birth_year": 1937,
            "caregiver__postcode": postcode,
            "caregiver__municipality_code": municipality,
            "note": f"Vrije tekst over deze mantelzorger {tag}",
            "source__reference": f"REF-{tag}",
            **changes,
        }
    )


def _consume(bootstrap: str, topic: str, want, timeout: float = 40) -> list[Any]:
    """Read the topic from the start with librdkafka until ``want(messages)``. Every
    partition is assigned directly: a consumer-group join takes librdkafka some 20 s on the
    embedded broker (Tansu)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"municipality-reader-{uuid.uuid4()}", "enable.auto.commit": False}
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    messages: list[Any] = []
    end = time.monotonic() + timeout
    try:
        while not want(messages) and time.monotonic() < end:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                messages.append(message)
    finally:
        consumer.close()
    return messages


async def _sse(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    event: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in event:
                yield event
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            event[field] = value


@pytest.fixture
async def municipal(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.services["municipalities"].url, timeout=30) as c:
        yield c


def _ours(group: dict[str, Any]) -> bool:
    """A group of the thirty: their district, age band and source kind, screened."""
    return (group["record"], group["area"], group["age_band"], group["source_kind"]) == (
        "signal.screened",
        "WK032703",
        "80-89",
        "home_care",
    )


async def test_thirty_similar_signals_come_out_as_groups_on_sse_and_kafka_with_nothing_identifying(
    stack: Stack,
    client: httpx.AsyncClient,
    municipal: httpx.AsyncClient,
) -> None:
    bodies = [identifying_signal(LEUSDEN, "3791 PQ", source__kind="home_care") for _ in range(30)]
    seen: list[dict[str, Any]] = []
    started = time.monotonic()
    async with municipal.stream(
        "GET", f"/v1/municipalities/{LEUSDEN}/events", headers=headers(KEYS[LEUSDEN])
    ) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        responses = await asyncio.gather(*(post(client, b, key=THUISZORG_KEY) for b in bodies))
        assert all(r.status_code == 202 for r in responses), [r.text for r in responses]
        # A group goes out as soon as 10 of the thirty wait together (the demo looks every
        # 3 s), so at most 9 can be left over (to be suppressed when their delay runs out).
        async with asyncio.timeout(60):
            async for event in _sse(response):
                envelope = json.loads(event["data"])
                seen.append(envelope)
                if sum(e["payload"]["count"] for e in seen if _ours(e["payload"])) >= 21:
                    break
    print(f"at least 21 of the thirty were released within {time.monotonic() - started:.1f}s")
    ours = [e["payload"] for e in seen if _ours(e["payload"])]
    assert all(g["count"] >= 10 and g["level"] == 0 and g["risk_level"] for g in ours)
    assert sum(g["count"] for g in ours) <= 30
    assert all(e["payload"]["municipality_code"] == LEUSDEN and e["subject"] == LEUSDEN for e in seen)

    topic = f"municipality.{LEUSDEN}.events.v1"
    ids = {e["event_id"] for e in seen}
    messages = await asyncio.to_thread(
        _consume, stack.broker.bootstrap, topic, lambda found: ids <= {json.loads(m.value())["event_id"] for m in found}
    )
    envelopes = [json.loads(m.value()) for m in messages]
    assert ids <= {e["event_id"] for e in envelopes}
    assert all(m.key().decode() == LEUSDEN for m in messages)  # the key names no one
    assert all(e["payload"]["count"] >= 10 for e in envelopes)

    signal_ids = [r.json()["id"] for r in responses]
    texts = [str(i) for i in signal_ids]
    for body in bodies:
        c = body["caregiver"]
        texts += [
            c["name"],
            c["email"],
            c["phone"],
            body["note"],
            body["source"]["reference"],
            c["postcode"],
            c["postcode"].replace(" ", ""),
        ]
    pseudonyms = await query(
        stack,
        "signals",
        "SELECT caregiver_pseudonym FROM signals WHERE id = ANY($1::uuid[])",
        [uuid.UUID(i) for i in signal_ids],
    )
    texts += [r[0] for r in pseudonyms]
    assert not {e[k] for e in envelopes for k in RANDOM_IDS} & set(texts)
    rest = json.dumps([{k: v for k, v in e.items() if k not in RANDOM_IDS} for e in envelopes + seen]).casefold()
    assert not [value for value in texts if value.casefold() in rest]
    assert not re.search(r"\b1937\b", rest)  # their birth year
    assert all(e["occurred_at"].endswith("-01T00:00:00Z") for e in envelopes)  # the month's first day


async def test_three_similar_signals_release_nothing(
    stack: Stack,
    client: httpx.AsyncClient,
) -> None:
    """In Bunschoten, where no other test posts: the three wait, find no k, and are suppressed."""
    bodies = [identifying_signal(BUNSCHOTEN, "3751 AB") for _ in range(3)]
    responses = await asyncio.gather(*(post(client, b) for b in bodies))
    for response in responses:
        await wait_for_status(client, response.json()["id"], {"matched", "notified"}, timeout=60)
    waiting = "SELECT count(*) FROM waiting_records WHERE municipality_code = $1"
    assert (await query(stack, "municipalities", waiting, BUNSCHOTEN))[0][0] >= 3
    async with asyncio.timeout(120):  # the session stack's delay is 30 s
        while (await query(stack, "municipalities", waiting, BUNSCHOTEN))[0][0]:
            await asyncio.sleep(1)
    released = "SELECT count(*) FROM released_groups WHERE municipality_code = $1"
    assert (await query(stack, "municipalities", released, BUNSCHOTEN))[0][0] == 0
    topic = f"municipality.{BUNSCHOTEN}.events.v1"
    assert not await asyncio.to_thread(_consume, stack.broker.bootstrap, topic, lambda found: bool(found), 5)


async def test_an_unknown_municipality_gets_no_topic(
    stack: Stack,
    client: httpx.AsyncClient,
    municipal: httpx.AsyncClient,
) -> None:
    """A code that is no municipality (the CBS list) is refused at ingest; an existing one this
    deployment does not serve flows through the pipeline, and neither gets a topic."""
    refused = await post(client, identifying_signal("GM9999", "1234 AB"))
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["detail"]] == ["caregiver.municipality_code"]
    signal_id = (await post(client, identifying_signal("GM0014", "9711 AB"))).json()["id"]  # Groningen
    await wait_for_status(client, signal_id, {"screened", "escalated", "matched", "notified"}, timeout=60)
    await asyncio.sleep(3)  # the municipalities service has had signal.screened too
    topics = AdminClient({"bootstrap.servers": stack.broker.bootstrap}).list_topics(timeout=10).topics
    assert "municipality.GM9999.events.v1" not in topics and "municipality.GM0014.events.v1" not in topics
    assert len(topics[f"municipality.{LEUSDEN}.events.v1"].partitions) == 6  # KAFKA_PARTITIONS
    response = await municipal.get("/v1/municipalities/GM9999/statistics", headers=headers(KEYS[LEUSDEN]))
    assert response.status_code == 422


@pytest.mark.parametrize("path", ["events", "statistics", "statistics/outcomes", "webhooks"])
async def test_one_municipality_never_reads_another(municipal: httpx.AsyncClient, path: str) -> None:
    url = f"/v1/municipalities/{AMERSFOORT}/{path}"
    assert (await municipal.get(url, headers=headers(KEYS[LEUSDEN]))).status_code == 403
    assert (await municipal.get(url)).status_code == 401
    assert (await municipal.get(url, headers=headers("demo-gp-key"))).status_code == 401  # a partner key
    assert (await municipal.get(f"/v1/municipalities/{LEUSDEN}/{path}", headers=headers("wrong"))).status_code == 401
    if path != "events":
        assert (await municipal.get(url, headers=headers(KEYS[AMERSFOORT]))).status_code == 200


async def test_statistics_answer_closed_months_only(municipal: httpx.AsyncClient) -> None:
    month = datetime.now(UTC).strftime("%Y-%m")
    for path in ("statistics", "statistics/outcomes"):
        response = await municipal.get(
            f"/v1/municipalities/{LEUSDEN}/{path}", params={"from": month, "to": month}, headers=headers(KEYS[LEUSDEN])
        )
        assert response.status_code == 200, response.text
        assert response.json()["months"] == [] and response.json()["open_months"] == [month]


async def test_webhooks_are_registered_per_municipality_and_must_use_https(municipal: httpx.AsyncClient) -> None:
    client = municipal
    url = f"/v1/municipalities/{LEUSDEN}/webhooks"
    own, other = headers(KEYS[LEUSDEN]), headers(KEYS[AMERSFOORT])
    plain = await client.post(url, headers=own, json={"url": "http://127.0.0.1:9/hook", "secret": "s" * 20})
    assert plain.status_code == 422
    short = await client.post(url, headers=own, json={"url": "https://1.1.1.1/hook", "secret": "short"})
    assert short.status_code == 422
    # A public address (a literal: a name would need DNS, which a test machine may lack).
    created = await client.post(url, headers=own, json={"url": "https://1.1.1.1/gemeente-hook", "secret": "s" * 20})
    assert created.status_code == 201, created.text
    hook = created.json()
    assert "secret" not in hook and hook["url"] == "https://1.1.1.1/gemeente-hook"
    assert [h["id"] for h in (await client.get(url, headers=own)).json()] == [hook["id"]]
    assert (await client.get(f"/v1/municipalities/{AMERSFOORT}/webhooks", headers=other)).json() == []
    assert (
        await client.delete(f"/v1/municipalities/{AMERSFOORT}/webhooks/{hook['id']}", headers=other)
    ).status_code == 404
    assert (await client.delete(f"{url}/{hook['id']}", headers=own)).status_code == 204
    assert (await client.get(url, headers=own)).json() == []


async def test_the_asyncapi_document_is_served_next_to_the_openapi_docs(municipal: httpx.AsyncClient) -> None:
    document = (await municipal.get("/asyncapi.json")).json()
    channel = document["channels"]["municipality-events"]
    assert channel["address"] == "municipality.{municipality_code}.events.v1"
    assert "ReleasedGroup" in document["components"]["schemas"]
    assert "asyncapi" in (await municipal.get("/asyncapi")).text.lower()
    assert (await municipal.get("/docs")).status_code == 200


# --- erasure -------------------------------------------------------------------------


async def test_an_organisation_erases_only_caregivers_it_posted_about(client: httpx.AsyncClient) -> None:
    signal = identifying_signal(LEUSDEN, "3834 PT")
    signal_id = (await post(client, signal)).json()["id"]
    caregiver = signal["caregiver"]
    by_id = {"signal_ids": [signal_id]}
    by_identity = {"caregiver": {k: caregiver[k] for k in ("name", "birth_year", "postcode")}}
    for body in (by_id, by_identity):  # the GP posted it, not the neighbourhood team
        assert (await client.post("/v1/erasures", headers=headers("demo-wijkteam-key"), json=body)).status_code == 404
    assert (await client.get(f"/v1/signals/{signal_id}", headers=headers())).status_code == 200
    for wrong in ({}, by_id | by_identity, {"caregiver": {"name": "only a name"}}):
        assert (await client.post("/v1/erasures", headers=headers(), json=wrong)).status_code == 422
    assert (await client.post("/v1/erasures", json=by_id)).status_code == 401
    answer = await client.post("/v1/erasures", headers=headers(), json=by_id)
    assert answer.status_code == 202 and answer.json()["scope"] == "signals"
    assert (await client.get(answer.json()["status_url"], headers=headers("demo-wijkteam-key"))).status_code == 404
    assert (await client.get(f"/v1/signals/{signal_id}", headers=headers())).status_code == 404


@pytest.fixture(scope="module")
async def erased(stack: Stack) -> dict[str, Any]:
    """A caregiver posted, taken through the pipeline, then erased on the GP's request."""
    signal = identifying_signal(LEUSDEN, "3832 GH")
    caregiver = signal["caregiver"]
    async with httpx.AsyncClient(base_url=stack.services["signals"].url, timeout=30) as client:
        signal_id = (await post(client, signal)).json()["id"]
        await wait_for_status(
            client,
            signal_id,
            {"notified"},
            timeout=60,
            until=lambda b: any(n["recipient"] == "caregiver" for n in b["notifications"]),
        )
        pseudonym = (
            await query(stack, "signals", "SELECT caregiver_pseudonym FROM signals WHERE id = $1", uuid.UUID(signal_id))
        )[0][0]
        answer = await client.post(
            "/v1/erasures",
            headers=headers(),
            json={
                "caregiver": {
                    "name": caregiver["name"],
                    "birth_year": caregiver["birth_year"],
                    "postcode": caregiver["postcode"],
                }
            },
        )
        assert answer.status_code == 202, answer.text
        assert answer.json()["scope"] == "signals"
        async with asyncio.timeout(20):
            while (await client.get(answer.json()["status_url"], headers=headers())).json()["status"] != "propagated":
                await asyncio.sleep(0.2)
        assert (await client.get(f"/v1/signals/{signal_id}", headers=headers())).status_code == 404
    event_ids = (
        await query(stack, "signals", "SELECT event_ids FROM erasures WHERE id = $1", uuid.UUID(answer.json()["id"]))
    )[0][0]
    values = [
        caregiver["name"],
        caregiver["email"],
        caregiver["phone"],
        caregiver["postcode"],
        caregiver["postcode"].replace(" ", ""),
        signal["note"],
        signal["source"]["reference"],
        pseudonym,
    ]
    return {"signal_id": signal_id, "pseudonym": pseudonym, "event_ids": event_ids, "values": values}


async def _rows_mentioning(stack: Stack, service: str, value: str) -> list[str]:
    """Every row of every table in the service's database whose text contains ``value``."""
    found = []
    tables = await query(stack, service, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    for (table,) in tables:
        columns = await query(
            stack,
            service,
            """SELECT column_name, data_type FROM information_schema.columns
                                                  WHERE table_schema = 'public' AND table_name = $1""",
            table,
        )
        text = " || ' ' || ".join(
            f"""coalesce(encode("{c}", 'escape'), '')""" if t == "bytea" else f"""coalesce("{c}"::text, '')"""
            for c, t in columns
        )
        rows = await query(
            stack, service, f'SELECT {text} AS row FROM "{table}" WHERE position($1 in {text}) > 0', value
        )
        found += [f"{table}: {r['row']}" for r in rows]
    return found


@pytest.mark.parametrize("service", SERVICES)
async def test_an_erasure_leaves_nothing_identifying_in_any_database(
    stack: Stack,
    erased: dict[str, Any],
    service: str,
) -> None:
    if service not in ("signals", "operators"):  # the console consumes no events
        async with asyncio.timeout(30):  # the service has consumed caregiver.erased
            while not (
                await query(stack, service, "SELECT count(*) FROM inbox WHERE event_id = ANY($1)", erased["event_ids"])
            )[0][0]:
                await asyncio.sleep(0.2)
    leftovers: dict[str, list[str]] = {}
    for value in erased["values"]:
        found = await _rows_mentioning(stack, service, value)
        if service == "signals" and value == erased["pseudonym"]:
            # The erasure instruction itself names whom to erase, until the relay's retention ends.
            found = [f for f in found if not f.startswith("outbox: ") or "caregiver.erased" not in f]
        if found:
            leftovers[value] = sorted({f.split(":", 1)[0] for f in found})
    assert not leftovers, f"identifying values left, by table: {leftovers}"
    if service == "signals":  # the partner's handle on the person is gone too
        mentions = await _rows_mentioning(stack, "signals", erased["signal_id"])
        # Kept: the erasure instruction, and the append-only access log, which names who read
        # which id and when (accountability); nothing left links that id to a person.
        kept = [
            f
            for f in mentions
            if f.startswith("access_log: ") or (f.startswith("outbox: ") and "caregiver.erased" in f)
        ]
        assert mentions == kept, "\n".join(f[:300] for f in mentions if f not in kept)
