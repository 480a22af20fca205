"""The closed loop across services: a provider declines, matching proposes another service,
and the referrer is told — all visible in the signal's status."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid

import httpx
import pytest

from deploy.stack import REPO, Stack
from tests.e2e.conftest import case_of, make_signal, post, query, wait_for_status

pytestmark = pytest.mark.e2e


async def test_a_provider_decline_leads_to_a_new_proposal_and_the_referrer_is_told(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    signal_id = (await post(client, make_signal())).json()["id"]
    before = await wait_for_status(client, signal_id, {"notified"})
    [declined, *_] = await query(
        stack,
        "notify",
        "SELECT id, service_id FROM referrals WHERE signal_id = $1 AND NOT consultant ORDER BY created_at",
        uuid.UUID(signal_id),
    )
    issued = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.notify.cli", "issue-provider-key", "--service-id", declined["service_id"]],
        env=stack.env_for("notify"),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    key = issued.stdout.strip().splitlines()[-1]
    async with httpx.AsyncClient(base_url=stack.services["notify"].url, timeout=30) as notify:
        response = await notify.post(
            f"/v1/referrals/{declined['id']}/status",
            json={"status": "rejected", "reason_code": "no_capacity"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200, response.text
        again = await notify.post(
            f"/v1/referrals/{declined['id']}/status",
            json={"status": "accepted"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert again.status_code == 409, "a rejected referral cannot be accepted"

    def referrer(body: dict) -> list[dict]:
        return [n for n in body["notifications"] if n["recipient"] == "referrer"]

    def rematched_and_told(body: dict) -> bool:
        return (
            sum(t["stage"] == "matched" for t in body["timeline"]) >= 2
            and any(r["status"] == "rejected" for r in body["referrals"])
            and len(referrer(body)) > len(referrer(before))
        )

    after = await wait_for_status(client, signal_id, {"notified"}, until=rematched_and_told)
    assert declined["service_id"] not in {m["service_id"] for m in after["matches"]}
    assert next(r for r in after["referrals"] if r["status"] == "rejected")["reason_code"] == "no_capacity"
    released = await query(
        stack,
        "matching",
        "SELECT status FROM reservation WHERE case_id = $1 AND service_id = $2",
        await case_of(stack, signal_id),
        declined["service_id"],
    )
    assert [r["status"] for r in released] == ["released"]
