"""Screening and matching through the running pipeline: cases, escalation, the consultant,
explained proposals, no-match reasons and the social-map admin API."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from deploy.stack import REPO, Stack
from shared.contracts import Topics
from tests.e2e.conftest import (
    ADMIN_TOKEN,
    WIJKTEAM_KEY,
    case_of,
    make_signal,
    post,
    query,
    read_topic,
    wait_for_status,
)

pytestmark = pytest.mark.e2e

DONE = {"notified"}


async def test_two_sources_about_one_caregiver_become_one_case(client: httpx.AsyncClient, stack: Stack) -> None:
    gp_signal = make_signal(instrument=None, observations=["tension"], care_situation__hours_per_week=12)
    wijkteam_signal = json.loads(json.dumps(gp_signal)) | {"source": {"kind": "neighbourhood_team"}}
    first = (await post(client, gp_signal)).json()["id"]
    await wait_for_status(client, first, DONE)
    second = (await post(client, wijkteam_signal, key=WIJKTEAM_KEY)).json()["id"]
    second_status = await wait_for_status(client, second, DONE, key=WIJKTEAM_KEY)
    # The merge happens in screening; the second organisation's view shows its own signal only.
    case_id = await case_of(stack, first)
    assert await case_of(stack, second) == case_id
    [(assessment,)] = await query(stack, "screening", "SELECT assessment FROM cases WHERE id = $1", case_id)
    assert any("2 signals from 2 independent sources" in r for r in json.loads(assessment)["reasons"])
    assert not any("independent source" in r for r in second_status["screening"]["reasons"])


async def test_a_signal_without_answers_gets_a_reasoned_level(client: httpx.AsyncClient) -> None:
    signal_id = (await post(client, make_signal(instrument=None))).json()["id"]
    screening = (await wait_for_status(client, signal_id, DONE))["screening"]
    assert screening["instrument"] is None and screening["next_instrument"] == "ediz_plus"
    assert screening["risk_level"] in {"at_risk", "overburdened"}
    assert any("hours per week" in r for r in screening["reasons"])


@pytest.mark.parametrize(
    "answers,band,level", [([1] * 9 + [0] * 6, "heavy", "overburdened"), ([1] * 8 + [0] * 7, "moderate", "at_risk")]
)
async def test_ediz_plus_band_boundary_through_the_pipeline(
    client: httpx.AsyncClient, answers: list[int], band: str, level: str
) -> None:
    signal = make_signal(
        instrument={"id": "ediz_plus", "answers": answers}, observations=[], care_situation={"hours_per_week": 4}
    )
    screening = (await wait_for_status(client, (await post(client, signal)).json()["id"], DONE))["screening"]
    assert (screening["band"], screening["risk_level"]) == (band, level)


async def test_a_crisis_is_escalated_to_the_consultant_within_seconds(client: httpx.AsyncClient) -> None:
    signal_id = (await post(client, make_signal(urgency="crisis", observations=["neglect"]))).json()["id"]
    status = await wait_for_status(client, signal_id, DONE, timeout=10)
    assert status["screening"]["risk_level"] == "crisis"
    assert status["escalation"] and "escalated" in [t["stage"] for t in status["timeline"]]
    assert any(m["consultant"] for m in status["matches"]), "a crisis is never left to matching alone"


async def test_matches_are_explained_and_hold_a_slot(client: httpx.AsyncClient, stack: Stack) -> None:
    status = await wait_for_status(client, (await post(client, make_signal())).json()["id"], DONE)
    proposals = [m for m in status["matches"] if not m["consultant"]]
    assert proposals
    for m in proposals:
        assert m["explanation"]["covers_needs"] and m["explanation"]["score_parts"]
        assert abs(sum(m["explanation"]["score_parts"].values()) - m["score"]) < 0.01
    held = await query(
        stack,
        "matching",
        "SELECT service_id FROM reservation WHERE case_id = $1 AND status = 'held'",
        await case_of(stack, status["id"]),
    )
    assert {r["service_id"] for r in held} == {m["service_id"] for m in proposals}


async def test_no_support_in_the_area_escalates_with_the_reason(client: httpx.AsyncClient) -> None:
    signal = make_signal(caregiver__municipality_code="GM0344", caregiver__postcode="3511AB")
    status = await wait_for_status(client, (await post(client, signal)).json()["id"], DONE)
    assert status["matches"] == []
    assert "no services in area" in status["no_match_reason"]


async def test_the_admin_api_imports_hsds_and_is_closed_to_partner_keys(stack: Stack) -> None:
    url = f"{stack.services['matching'].url}/v1/admin/social-map"
    document = json.loads((REPO / "tests" / "fixtures" / "hsds" / "spec_service_full.json").read_text())
    async with httpx.AsyncClient(timeout=30) as client:
        assert (
            await client.put(url, json=document, headers={"Authorization": "Bearer demo-gp-key"})
        ).status_code == 401
        response = await client.put(url, json=document, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["services"] >= 1 and report["issues"], "the spec example has known issues, reported per record"
        again = (await client.put(url, json=document, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})).json()
        assert again["unchanged"] == report["services"]
        exported = (await client.get(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})).json()
        assert len(exported) >= 36


async def test_a_rescreen_is_emitted_when_due(client: httpx.AsyncClient, stack: Stack) -> None:
    status = await wait_for_status(client, (await post(client, make_signal())).json()["id"], DONE)
    case_id = await case_of(stack, status["id"])
    [case] = await query(stack, "screening", "SELECT rescreen_due_at, opened_at FROM cases WHERE id = $1", case_id)
    assert (case["rescreen_due_at"] - case["opened_at"]).days in (13, 14), "overburdened: re-screen after 2 weeks"
    await query(stack, "screening", "UPDATE cases SET rescreen_due_at = now() WHERE id = $1", case_id)
    [record] = await read_topic(
        stack.broker.bootstrap,
        Topics.SCREENING,
        lambda r: dict(r.headers).get("event_type") == b"rescreen.due" and str(case_id).encode() in r.value,
    )
    assert json.loads(record.value)["payload"]["risk_level"] == "overburdened"


async def test_invalid_instrument_answers_that_bypass_ingest_are_dead_lettered(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    # Take a real signal.received event and break its instrument answers, as a buggy producer would.
    signal = make_signal()
    signal_id = (await post(client, signal)).json()["id"]
    await wait_for_status(client, signal_id, DONE)
    [row] = await query(stack, "signals", "SELECT key, body FROM outbox WHERE body LIKE $1", f"%{signal_id}%")
    event = json.loads(row["body"])
    # In plaintext (version 1), as a producer from before encryption would send it.
    event["event_id"], event["version"] = str(uuid.uuid4()), 1
    event["payload"] = {k: v for k, v in event["payload"].items() if k != "sealed"} | signal
    event["payload"]["instrument"]["answers"] = [1, 1, 7]
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(Topics.SIGNALS, json.dumps(event).encode(), key=row["key"].encode())
    finally:
        await producer.stop()
    [record] = await read_topic(
        stack.broker.bootstrap, Topics.dlq(Topics.SIGNALS), lambda r: event["event_id"].encode() in r.value
    )
    error = dict(record.headers)["dlq_error"].decode()
    assert "ediz_plus" in error and dict(record.headers)["dlq_error_type"] == b"PermanentError"
