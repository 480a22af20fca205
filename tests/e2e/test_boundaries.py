"""Organisation boundaries and erasure roles through the running system: a second
organisation posting about a caregiver whom the first signalled as a crisis learns nothing
of the first one's signal from any answer it gets; its erasure withdraws only its own
signal; the privacy officer's erasure removes the person and is audited."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from deploy.run import DEMO_PRIVACY_OFFICER_KEY
from deploy.stack import Stack
from tests.e2e.conftest import GP_KEY, WIJKTEAM_KEY, headers, make_signal, post, query, wait_for_status

pytestmark = pytest.mark.e2e


def _identity(signal: dict[str, Any]) -> dict[str, Any]:
    return {"caregiver": {k: signal["caregiver"][k] for k in ("name", "birth_year", "postcode")}}


def _leaks(text: str, gp_signal_id: str, case_id: uuid.UUID) -> list[str]:
    """What of the GP's crisis signal, or of the case, a text shows."""
    lowered = text.lower()
    found = [
        word
        for word in (
            "crisis",
            "neglect",
            "derailed",
            "independent source",
            "highest level",
            "2 signals",
            "dementia",
            gp_signal_id,
            str(case_id),
            "his-2026-000123",
        )
        if word in lowered
    ]
    return found + re.findall(r"\bgp\b", lowered)


async def _propagated(client: httpx.AsyncClient, answer: httpx.Response, key: str) -> None:
    async with asyncio.timeout(20):
        while (await client.get(answer.json()["status_url"], headers=headers(key))).json()["status"] != "propagated":
            await asyncio.sleep(0.2)


async def _consumed(stack: Stack, erasure_id: str) -> None:
    """Every other service has handled the erasure's caregiver.erased events."""
    [(event_ids,)] = await query(
        stack, "signals", "SELECT event_ids FROM erasures WHERE id = $1", uuid.UUID(erasure_id)
    )
    async with asyncio.timeout(30):
        for service in ("screening", "matching", "notify", "municipalities"):
            while (await query(stack, service, "SELECT count(*) FROM inbox WHERE event_id = ANY($1)", event_ids))[0][
                0
            ] < len(event_ids):
                await asyncio.sleep(0.2)


async def test_a_second_organisation_learns_nothing_of_the_first_and_withdraws_only_its_own(
    client: httpx.AsyncClient,
    stack: Stack,
) -> None:
    # The GP signals a crisis; the neighbourhood team later posts a mild signal about the same person.
    gp = make_signal(urgency="crisis", observations=["neglect", "exhaustion"])
    team = json.loads(json.dumps(gp)) | {
        "source": {"kind": "neighbourhood_team"},
        "urgency": "normal",
        "observations": ["tension"],
        "instrument": None,
        "note": None,
        "care_recipient": {"relationship": "partner"},
        "care_situation": {"hours_per_week": 6},
    }
    gp_id = (await post(client, gp)).json()["id"]
    gp_status = await wait_for_status(client, gp_id, {"notified"})
    assert gp_status["screening"]["risk_level"] == "crisis"

    posted = await post(client, team, key=WIJKTEAM_KEY)
    assert posted.status_code == 202
    team_id = posted.json()["id"]
    team_status = await wait_for_status(
        client,
        team_id,
        {"notified"},
        key=WIJKTEAM_KEY,
        until=lambda b: any(n["recipient"] == "referrer" for n in b["notifications"]),
    )

    # Merging stays inside screening: one case holds both signals and judges them together.
    [(case_id, pseudonym)] = await query(
        stack, "signals", "SELECT case_id, caregiver_pseudonym FROM signals WHERE id = $1", uuid.UUID(gp_id)
    )
    merged = await query(stack, "screening", "SELECT signal_id FROM screenings WHERE case_id = $1", case_id)
    assert {str(r["signal_id"]) for r in merged} == {gp_id, team_id}
    [(assessment,)] = await query(stack, "screening", "SELECT assessment FROM cases WHERE id = $1", case_id)
    assert any("2 signals from 2 independent sources" in r for r in json.loads(assessment)["reasons"])

    # ... and none of it reaches the neighbourhood team: not its POST answer, not its status view
    # (its own, milder screening), not its messages.
    assert team_status["screening"]["risk_level"] != "crisis"
    assert "case_id" not in team_status and "case_id" not in team_status["screening"]
    assert _leaks(posted.text, gp_id, case_id) == []
    assert _leaks(json.dumps(team_status), gp_id, case_id) == [], team_status
    messages = await query(
        stack,
        "notify",
        """SELECT subject, body_text FROM notifications
                                                WHERE signal_id = $1 AND recipient_role = 'referrer'""",
        uuid.UUID(team_id),
    )
    assert messages
    for message in messages:
        assert _leaks(message["subject"] + message["body_text"], gp_id, case_id) == [], message["body_text"]

    # A partner key cannot erase the person across organisations.
    forbidden = await client.post(
        "/v1/erasures", headers=headers(WIJKTEAM_KEY), json=_identity(team) | {"scope": "caregiver"}
    )
    assert forbidden.status_code == 403

    # The team withdraws its signal: the same request twice is one withdrawal, and no answer counts anything.
    withdrawal = await client.post("/v1/erasures", headers=headers(WIJKTEAM_KEY), json=_identity(team))
    assert withdrawal.status_code == 202, withdrawal.text
    again = await client.post("/v1/erasures", headers=headers(WIJKTEAM_KEY), json=_identity(team))
    assert again.json()["id"] == withdrawal.json()["id"] and withdrawal.json()["scope"] == "signals"
    await _propagated(client, withdrawal, WIJKTEAM_KEY)
    erasure_status = (await client.get(withdrawal.json()["status_url"], headers=headers(WIJKTEAM_KEY))).json()
    for answer in (withdrawal.json(), again.json(), erasure_status):
        assert not [k for k in answer if "signals" in k or "count" in k], answer
        assert _leaks(json.dumps(answer), gp_id, case_id) == []
    await _consumed(stack, withdrawal.json()["id"])
    assert (await client.get(f"/v1/signals/{team_id}", headers=headers(WIJKTEAM_KEY))).status_code == 404

    # The GP's signal is intact everywhere, and keeps flowing.
    still = (await client.get(f"/v1/signals/{gp_id}", headers=headers(GP_KEY))).json()
    assert still["screening"]["risk_level"] == "crisis" and still["status"] == "notified"
    left = await query(stack, "screening", "SELECT signal_id FROM screenings WHERE case_id = $1", case_id)
    assert [str(r["signal_id"]) for r in left] == [gp_id]
    [(assessment,)] = await query(stack, "screening", "SELECT assessment FROM cases WHERE id = $1", case_id)
    assert json.loads(assessment)["reasons"][0].startswith("1 signal from 1 independent source (gp)")
    referrals = await query(stack, "notify", "SELECT signal FROM referrals WHERE signal_id = $1", uuid.UUID(gp_id))
    assert referrals and all(r["signal"] is not None for r in referrals)
    await query(stack, "screening", "UPDATE cases SET rescreen_due_at = now() WHERE id = $1", case_id)
    await wait_for_status(
        client, gp_id, {"notified"}, until=lambda b: "rescreen_due" in [t["stage"] for t in b["timeline"]]
    )

    # The privacy officer erases the person (art. 17): the GP's signal goes too, once, audited.
    officer = headers(DEMO_PRIVACY_OFFICER_KEY)
    erasure = await client.post("/v1/erasures", headers=officer, json=_identity(gp))
    assert erasure.status_code == 202, erasure.text
    assert erasure.json()["scope"] == "caregiver"
    repeated = await client.post("/v1/erasures", headers=officer, json=_identity(gp))
    assert repeated.json()["id"] == erasure.json()["id"]
    await _propagated(client, erasure, DEMO_PRIVACY_OFFICER_KEY)
    await _consumed(stack, erasure.json()["id"])
    assert (await client.get(f"/v1/signals/{gp_id}", headers=headers(GP_KEY))).status_code == 404
    assert await query(stack, "screening", "SELECT 1 FROM cases WHERE id = $1", case_id) == []
    assert (
        await query(
            stack, "notify", "SELECT 1 FROM referrals WHERE signal_id = $1 AND signal IS NOT NULL", uuid.UUID(gp_id)
        )
        == []
    )

    audit = await query(
        stack,
        "signals",
        "SELECT * FROM erasure_audit WHERE erasure_id = ANY($1::uuid[]) ORDER BY id",
        [uuid.UUID(withdrawal.json()["id"]), uuid.UUID(erasure.json()["id"])],
    )
    assert [(r["role"], r["scope"]) for r in audit] == [("partner", "signals"), ("privacy_officer", "caregiver")]
    # The person appears in the log only as the digest of their pseudonym.
    assert [r["subject_digests"] for r in audit] == [[hashlib.sha256(pseudonym.encode()).hexdigest()]] * 2
    assert gp["caregiver"]["name"] not in json.dumps([dict(r) for r in audit], default=str)
    conn = await asyncpg.connect(stack.services["signals"].env["SIGNALS_DATABASE_URL"])
    try:
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("DELETE FROM erasure_audit WHERE erasure_id = $1", uuid.UUID(erasure.json()["id"]))
    finally:
        await conn.close()


async def test_a_partner_withdraws_nothing_of_another_organisation(client: httpx.AsyncClient) -> None:
    signal = make_signal()
    signal_id = (await post(client, signal)).json()["id"]
    for body in (_identity(signal), {"signal_ids": [signal_id]}):
        answer = await client.post("/v1/erasures", headers=headers(WIJKTEAM_KEY), json=body)
        assert answer.status_code == 404 and "your organisation" in answer.json()["detail"]
    assert (await client.get(f"/v1/signals/{signal_id}", headers=headers())).status_code == 200
    assert (
        await client.post(
            "/v1/erasures", headers=headers(DEMO_PRIVACY_OFFICER_KEY), json=_identity(signal) | {"scope": "signals"}
        )
    ).status_code == 422
