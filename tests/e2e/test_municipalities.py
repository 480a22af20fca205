"""Municipalities through the whole system: an external Kafka client (librdkafka) reads a
municipality's topic and finds nothing identifying of the signals behind it; the GM0327
credential gets its live stream over SSE and suppressed statistics, and nothing of GM0307;
an erasure leaves nothing identifying in any service's database."""

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
from tests.e2e.conftest import headers, make_signal, post, query, wait_for_status

pytestmark = pytest.mark.e2e

KEYS = dict(DEMO_MUNICIPALITY_KEYS)
LEUSDEN, AMERSFOORT = "GM0327", "GM0307"
PAST_MATCHING = {"matched", "notified"}
RANDOM_IDS = ("event_id", "subject", "correlation_id")  # in the envelope: pseudonyms and a uuid


def identifying_signal(municipality: str, postcode: str, **changes: Any) -> dict[str, Any]:
    """A signal whose every identifying field is unique to it. Postcode letters are not hex
    digits, so a scan of raw bytes cannot find them inside a pseudonym by chance."""
    tag = uuid.uuid4().hex[:8]
    return make_signal(**{
        "caregiver__name": f"Mantelzorger {tag}", "caregiver__email": f"mz-{tag}@example.nl",
        "caregiver__phone": f"+3161{int(tag, 16) % 10_000_000:07d}", "caregiver__birth_year": 1937,
        "caregiver__postcode": postcode, "caregiver__municipality_code": municipality,
        "note": f"Vrije tekst over deze mantelzorger {tag}", "source__reference": f"REF-{tag}",
        **changes,
    })


@pytest.fixture(scope="module")
async def posted(stack: Stack) -> dict[str, list[str]]:
    """Signals in both municipalities, past matching; twelve of them in one statistics cell."""
    async with httpx.AsyncClient(base_url=stack.services["signals"].url, timeout=30) as client:
        bodies = {
            LEUSDEN: [identifying_signal(LEUSDEN, "3833 KL"),
                      identifying_signal(LEUSDEN, "3835XY", source={"kind": "resident"}),
                      *(identifying_signal(LEUSDEN, "3791 PQ", source={"kind": "home_care"}) for _ in range(12))],
            AMERSFOORT: [identifying_signal(AMERSFOORT, "3811 MN")],
        }
        ids: dict[str, list[str]] = {}
        for code, signals in bodies.items():
            responses = await asyncio.gather(*(post(client, s) for s in signals))
            assert all(r.status_code == 202 for r in responses), [r.text for r in responses]
            ids[code] = [r.json()["id"] for r in responses]
        for signal_id in (i for code_ids in ids.values() for i in code_ids):
            await wait_for_status(client, signal_id, PAST_MATCHING, timeout=60)
    return ids


async def _identifying_values(stack: Stack, municipality: str) -> tuple[list[str], set[int], list[str]]:
    """Every identifying value of every signal in the municipality, and the birth years."""
    rows = await query(stack, "signals", "SELECT id, caregiver_pseudonym, received_at, body FROM signals "
                                         "WHERE municipality_code = $1", municipality)
    texts, years, received = [], set(), []
    for row in rows:
        body = json.loads(row["body"]) if isinstance(row["body"], str) else row["body"]
        c = body["caregiver"]
        texts += [v for v in (c.get("name"), c.get("email"), c.get("phone"), body.get("note"),
                              body["source"].get("reference"), str(row["id"]), row["caregiver_pseudonym"]) if v]
        if c.get("postcode"):
            pc = c["postcode"].replace(" ", "")
            texts += [pc, f"{pc[:4]} {pc[4:]}"] if len(pc) == 6 else []
        if c.get("birth_year"):
            years.add(c["birth_year"])
        received.append(row["received_at"].isoformat()[:19])
    return texts, years, received


def _consume(bootstrap: str, topic: str, at_least: int, timeout: float = 40) -> list[Any]:
    """Read the topic from the start with librdkafka. Every partition is assigned directly:
    a consumer-group join takes librdkafka some 20 s on the embedded broker (Tansu)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"municipality-reader-{uuid.uuid4()}",
                         "enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    messages: list[Any] = []
    end = time.monotonic() + timeout
    try:
        while len(messages) < at_least and time.monotonic() < end:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                messages.append(message)
    finally:
        consumer.close()
    return messages


async def test_an_external_kafka_client_reads_the_topic_and_finds_nothing_identifying(
    stack: Stack, posted: dict[str, list[str]],
) -> None:
    topic = f"municipality.{LEUSDEN}.events.v1"
    metadata = AdminClient({"bootstrap.servers": stack.broker.bootstrap}).list_topics(timeout=10)
    assert len(metadata.topics[topic].partitions) == 6  # KAFKA_PARTITIONS, not a broker default
    expected = (await query(stack, "signals", "SELECT count(*) FROM municipal_events WHERE municipality_code = $1",
                            LEUSDEN))[0][0]
    messages = await asyncio.to_thread(_consume, stack.broker.bootstrap, topic, expected)
    assert len(messages) >= expected
    envelopes = [json.loads(m.value()) for m in messages]
    assert all(m.key().decode() == e["subject"] for m, e in zip(messages, envelopes, strict=True))
    assert {e["payload"]["municipality_code"] for e in envelopes} == {LEUSDEN}
    received = [e for e in envelopes if e["event_type"] == "signal.received"]
    signals = (await query(stack, "signals", "SELECT count(*) FROM signals WHERE municipality_code = $1",
                           LEUSDEN))[0][0]
    assert len(received) >= signals >= len(posted[LEUSDEN])
    assert any(e["payload"]["area"] == {"kind": "wijk", "code": "WK032703"}
               and e["payload"]["source_kind"] == "home_care" for e in received)

    texts, years, moments = await _identifying_values(stack, LEUSDEN)
    # The random ids are compared whole (a postcode could hide in hex by chance); the rest
    # of every message is searched for every identifying value.
    random_ids = {e[k] for e in envelopes for k in RANDOM_IDS}
    assert all(re.fullmatch(r"[0-9a-f]{64}", e[k]) for e in envelopes for k in ("subject", "correlation_id"))
    assert not random_ids & set(texts)
    rest = json.dumps([{k: v for k, v in e.items() if k not in RANDOM_IDS} for e in envelopes]).casefold()
    for value in texts + moments:
        assert value.casefold() not in rest, value
    # Birth years, as numbers or inside text, anywhere but in the week and its Monday.
    undated = json.dumps([{**{k: v for k, v in e.items() if k not in (*RANDOM_IDS, "occurred_at")},
                           "payload": {k: v for k, v in e["payload"].items() if k != "week"}} for e in envelopes])
    assert not [year for year in years if re.search(rf"\b{year}\b", undated)]
    assert all(e["occurred_at"].endswith("T00:00:00Z") for e in envelopes)  # the week's Monday


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


async def test_the_gm0327_credential_gets_its_live_stream_over_sse(
    client: httpx.AsyncClient, posted: dict[str, list[str]],
) -> None:
    today = datetime.now(UTC).date().isoformat()
    url = f"/v1/municipalities/{LEUSDEN}/events"
    marker = identifying_signal(LEUSDEN, "3834 ZZ", source={"kind": "self"}, caregiver__birth_year=2004)
    seen: list[dict[str, str]] = []
    async with client.stream("GET", url, params={"since": today}, headers=headers(KEYS[LEUSDEN])) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        async with asyncio.timeout(30):
            async for event in _sse(response):
                seen.append(event)
                payload = json.loads(event["data"])["payload"]
                assert payload["municipality_code"] == LEUSDEN
                if len(seen) == 1:  # replayed from this week; now a new signal arrives live
                    assert (await post(client, marker)).status_code == 202
                if (payload["source_kind"], payload["age_band"], (payload["area"] or {}).get("code")) == (
                        "self", "20-29", "WK032701"):
                    break
    ids = [int(e["id"]) for e in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert seen[-1]["event"] == "signal.received"
    # Resume after the last event seen: the stream goes on from there, no repeats.
    async with client.stream("GET", url, headers=headers(KEYS[LEUSDEN], **{"Last-Event-ID": str(ids[-1])})) as response:
        async with asyncio.timeout(30):
            resumed = await anext(_sse(response))
    assert int(resumed["id"]) == ids[-1] + 1


@pytest.mark.parametrize("path", ["events", "statistics", "statistics/time-to-support", "webhooks"])
async def test_one_municipality_never_reads_another(client: httpx.AsyncClient, path: str) -> None:
    url = f"/v1/municipalities/{AMERSFOORT}/{path}"
    assert (await client.get(url, headers=headers(KEYS[LEUSDEN]))).status_code == 403
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url, headers=headers("demo-gp-key"))).status_code == 401  # a partner key
    assert (await client.get(f"/v1/municipalities/{LEUSDEN}/{path}", headers=headers("wrong"))).status_code == 401
    if path != "events":
        assert (await client.get(url, headers=headers(KEYS[AMERSFOORT]))).status_code == 200


async def test_gm0307_reads_only_its_own_stream(client: httpx.AsyncClient, posted: dict[str, list[str]]) -> None:
    since = datetime.now(UTC).date().isoformat()
    async with client.stream("GET", f"/v1/municipalities/{AMERSFOORT}/events", params={"since": since},
                             headers=headers(KEYS[AMERSFOORT])) as response:
        async with asyncio.timeout(30):
            first = json.loads((await anext(_sse(response)))["data"])
    assert first["payload"]["municipality_code"] == AMERSFOORT
    assert first["payload"]["area"] == {"kind": "wijk", "code": "WK030700"}


async def test_statistics_are_suppressed_rounded_and_fixed_in_shape(
    client: httpx.AsyncClient, posted: dict[str, list[str]],
) -> None:
    month = datetime.now(UTC).strftime("%Y-%m")
    response = await client.get(f"/v1/municipalities/{LEUSDEN}/statistics", params={"from": month, "to": month},
                                headers=headers(KEYS[LEUSDEN]))
    assert response.status_code == 200, response.text
    table = response.json()["months"][0]["table"]
    figures = [c for row in table["cells"] for c in row]
    figures += [*table["row_totals"], *table["column_totals"], table["total"]]
    for figure in figures:
        assert figure["suppressed"] == (figure["value"] is None)
        assert figure["suppressed"] or (figure["value"] >= 10 and figure["value"] % 5 == 0)
    assert any(f["suppressed"] for f in figures)
    row, column = table["rows"].index("WK032703"), table["columns"].index("home_care/overburdened")
    assert table["cells"][row][column] == {"value": 10, "suppressed": False}  # the twelve, rounded
    times = await client.get(f"/v1/municipalities/{LEUSDEN}/statistics/time-to-support",
                             params={"from": month, "to": month}, headers=headers(KEYS[LEUSDEN]))
    to_match = times.json()["months"][0]["to_match"]
    assert to_match["n"]["value"] >= 10 and to_match["p50"] is not None  # the twelve at least


async def test_webhooks_are_registered_per_municipality_and_must_use_https(client: httpx.AsyncClient) -> None:
    url = f"/v1/municipalities/{LEUSDEN}/webhooks"
    own, other = headers(KEYS[LEUSDEN]), headers(KEYS[AMERSFOORT])
    plain = await client.post(url, headers=own, json={"url": "http://127.0.0.1:9/hook", "secret": "s" * 20})
    assert plain.status_code == 422
    short = await client.post(url, headers=own, json={"url": "https://a.example/hook", "secret": "short"})
    assert short.status_code == 422
    created = await client.post(url, headers=own, json={"url": "https://gemeente.example/hook", "secret": "s" * 20})
    assert created.status_code == 201, created.text
    hook = created.json()
    assert "secret" not in hook and hook["url"] == "https://gemeente.example/hook"
    assert [h["id"] for h in (await client.get(url, headers=own)).json()] == [hook["id"]]
    assert (await client.get(f"/v1/municipalities/{AMERSFOORT}/webhooks", headers=other)).json() == []
    assert (await client.delete(f"/v1/municipalities/{AMERSFOORT}/webhooks/{hook['id']}",
                                headers=other)).status_code == 404
    assert (await client.delete(f"{url}/{hook['id']}", headers=own)).status_code == 204
    assert (await client.get(url, headers=own)).json() == []


async def test_the_asyncapi_document_is_served_next_to_the_openapi_docs(client: httpx.AsyncClient) -> None:
    document = (await client.get("/asyncapi.json")).json()
    channel = document["channels"]["municipality-events"]
    assert channel["address"] == "municipality.{municipality_code}.events.v1"
    assert "MunicipalEvent" in document["components"]["schemas"]
    assert "asyncapi" in (await client.get("/asyncapi")).text.lower()
    assert (await client.get("/docs")).status_code == 200


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
    for body in ({}, by_id | by_identity, {"caregiver": {"name": "only a name"}}):
        assert (await client.post("/v1/erasures", headers=headers(), json=body)).status_code == 422
    assert (await client.post("/v1/erasures", json=by_id)).status_code == 401
    answer = await client.post("/v1/erasures", headers=headers(), json=by_id)
    assert answer.status_code == 202 and answer.json()["signals_erased"] == 1
    assert (await client.get(answer.json()["status_url"], headers=headers("demo-wijkteam-key"))).status_code == 404
    assert (await client.get(f"/v1/signals/{signal_id}", headers=headers())).status_code == 404


@pytest.fixture(scope="module")
async def erased(stack: Stack) -> dict[str, Any]:
    """A caregiver posted, taken through the pipeline, then erased on the GP's request."""
    signal = identifying_signal(LEUSDEN, "3832 GH")
    caregiver = signal["caregiver"]
    async with httpx.AsyncClient(base_url=stack.services["signals"].url, timeout=30) as client:
        signal_id = (await post(client, signal)).json()["id"]
        await wait_for_status(client, signal_id, {"notified"}, timeout=60,
                              until=lambda b: any(n["recipient"] == "caregiver" for n in b["notifications"]))
        pseudonym = (await query(stack, "signals", "SELECT caregiver_pseudonym FROM signals WHERE id = $1",
                                 uuid.UUID(signal_id)))[0][0]
        answer = await client.post("/v1/erasures", headers=headers(), json={"caregiver": {
            "name": caregiver["name"], "birth_year": caregiver["birth_year"], "postcode": caregiver["postcode"]}})
        assert answer.status_code == 202, answer.text
        assert answer.json()["signals_erased"] == 1
        async with asyncio.timeout(20):
            while (await client.get(answer.json()["status_url"], headers=headers())).json()["status"] != "propagated":
                await asyncio.sleep(0.2)
        assert (await client.get(f"/v1/signals/{signal_id}", headers=headers())).status_code == 404
    event_ids = (await query(stack, "signals", "SELECT event_ids FROM erasures WHERE id = $1",
                             uuid.UUID(answer.json()["id"])))[0][0]
    values = [caregiver["name"], caregiver["email"], caregiver["phone"], caregiver["postcode"],
              caregiver["postcode"].replace(" ", ""), signal["note"], signal["source"]["reference"], pseudonym]
    return {"signal_id": signal_id, "pseudonym": pseudonym, "event_ids": event_ids, "values": values}


async def _rows_mentioning(stack: Stack, service: str, value: str) -> list[str]:
    """Every row of every table in the service's database whose text contains ``value``."""
    found = []
    tables = await query(stack, service, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    for (table,) in tables:
        columns = await query(stack, service, """SELECT column_name, data_type FROM information_schema.columns
                                                  WHERE table_schema = 'public' AND table_name = $1""", table)
        text = " || ' ' || ".join(
            f"""coalesce(encode("{c}", 'escape'), '')""" if t == "bytea" else f"""coalesce("{c}"::text, '')"""
            for c, t in columns)
        rows = await query(stack, service, f'SELECT {text} AS row FROM "{table}" WHERE position($1 in {text}) > 0',
                           value)
        found += [f"{table}: {r['row']}" for r in rows]
    return found


@pytest.mark.parametrize("service", SERVICES)
async def test_an_erasure_leaves_nothing_identifying_in_any_database(
    stack: Stack, erased: dict[str, Any], service: str,
) -> None:
    if service != "signals":
        async with asyncio.timeout(30):  # the service has consumed caregiver.erased
            while not (await query(stack, service, "SELECT count(*) FROM inbox WHERE event_id = ANY($1)",
                                   erased["event_ids"]))[0][0]:
                await asyncio.sleep(0.2)
    leftovers = {}
    for value in erased["values"]:
        found = await _rows_mentioning(stack, service, value)
        if service == "signals" and value == erased["pseudonym"]:
            # The erasure instruction itself names whom to erase, until the relay's retention ends.
            found = [f for f in found if not f.startswith("outbox: ") or "caregiver.erased" not in f]
        if found:
            leftovers[value] = sorted({f.split(":", 1)[0] for f in found})
    assert not leftovers, f"identifying values left, by table: {leftovers}"
    if service == "signals":  # the partner's handle on the person is gone too
        leftovers = await _rows_mentioning(stack, "signals", erased["signal_id"])
        assert all(f.startswith("outbox: ") and "caregiver.erased" in f for f in leftovers), leftovers[:3]
