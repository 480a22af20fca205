"""The ingest API's contract with partner organisations, over real HTTP."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.conftest import DEMO_SIGNAL, WIJKTEAM_KEY, headers, make_signal, post

pytestmark = pytest.mark.e2e


async def test_the_demo_signal_is_accepted_as_it_is(client: httpx.AsyncClient) -> None:
    response = await post(client, DEMO_SIGNAL)
    assert response.status_code == 202, response.text
    body = response.json()
    assert uuid.UUID(body["id"])
    assert body["status_url"].endswith(f"/v1/signals/{body['id']}")


@pytest.mark.parametrize("auth", [None, "Bearer wrong-key", "Basic ZGVtbzpkZW1v", "Bearer"])
async def test_missing_or_wrong_key_is_401(client: httpx.AsyncClient, auth: str | None) -> None:
    response = await client.post("/v1/signals", json=DEMO_SIGNAL, headers={"Authorization": auth} if auth else {})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_other_organisation_gets_404(client: httpx.AsyncClient) -> None:
    signal_id = (await post(client, make_signal())).json()["id"]
    assert (await client.get(f"/v1/signals/{signal_id}", headers=headers(WIJKTEAM_KEY))).status_code == 404
    assert (await client.get(f"/v1/signals/{uuid.uuid4()}", headers=headers())).status_code == 404


async def test_invalid_fields_are_named(client: httpx.AsyncClient) -> None:
    signal = make_signal(
        caregiver__municipality_code="Leusden", source__kind="astrologer", care_situation__hours_per_week=-3
    )
    signal["caregiver"]["shoe_size"] = 41
    response = await post(client, signal)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["detail"]}
    assert {
        "caregiver.municipality_code",
        "source.kind",
        "care_situation.hours_per_week",
        "caregiver.shoe_size",
    } <= fields


async def test_malformed_json_is_a_4xx_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/signals", content=b'{"source": ', headers=headers(**{"Content-Type": "application/json"})
    )
    assert response.status_code == 422


async def test_body_over_64_kib_is_413_even_without_content_length(client: httpx.AsyncClient) -> None:
    big = make_signal(note="x" * 70_000)
    assert (await post(client, big)).status_code == 413

    async def chunks():
        for _ in range(80):
            yield b"x" * 1024

    response = await client.post(
        "/v1/signals", content=chunks(), headers=headers(**{"Content-Type": "application/json"})
    )
    assert response.status_code == 413


async def test_idempotency_key_returns_the_first_answer(client: httpx.AsyncClient) -> None:
    key = str(uuid.uuid4())
    signal = make_signal()
    first = await post(client, signal, **{"Idempotency-Key": key})
    again = await post(client, signal, **{"Idempotency-Key": key})
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    other = await post(client, make_signal(), **{"Idempotency-Key": key})
    assert other.status_code == 422
    assert other.json()["detail"][0]["field"] == "Idempotency-Key"


async def test_openapi_and_docs_are_served(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/signals" in spec["paths"] and "/v1/signals/{signal_id}" in spec["paths"]
    assert (await client.get("/docs")).status_code == 200


@pytest.mark.parametrize(
    "instrument,field,fragment",
    [
        ({"id": "ediz_plus", "answers": [1] * 14}, "instrument.answers", "ediz_plus expects 15 answers"),
        ({"id": "ediz_plus", "answers": [1, 1, 2] + [0] * 12}, "instrument.answers.2", "ediz_plus item 3"),
        ({"id": "csi", "answers": [1] * 12 + [5]}, "instrument.answers.12", "csi item 13"),
        ({"id": "wellbeing_quiz", "answers": [1]}, "instrument.id", "unknown instrument"),
    ],
)
async def test_bad_instrument_answers_are_rejected_naming_instrument_and_item(
    client: httpx.AsyncClient, instrument: dict, field: str, fragment: str
) -> None:
    response = await post(client, make_signal(instrument=instrument))
    assert response.status_code == 422
    [error] = [e for e in response.json()["detail"] if e["field"] == field]
    assert fragment in error["message"]


async def test_instruments_are_listed_with_their_items(client: httpx.AsyncClient) -> None:
    instruments = {i["id"]: i for i in (await client.get("/v1/instruments")).json()}
    assert {"ediz_plus", "csi", "mcsi", "zbi4"} <= instruments.keys()
    assert len(instruments["ediz_plus"]["items"]) == 15 and instruments["ediz_plus"]["items"][0]["text_nl"]
    assert all(item.get("text_en") is None for item in instruments["zbi4"]["items"])
