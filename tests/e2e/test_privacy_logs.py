"""No personal data in the log files, and an access log of who touched what, through the
running system.

Signals with distinctive identifying values (name, e-mail, phone, postcode with house number,
a free-text note, the recipient's condition, the partner's reference) flow through every
service; some requests are invalid (422), one caregiver's address is refused by the mail
relay (a permanent SMTP failure whose reply echoes the address), a poison event carrying the
values is dead-lettered, and the privacy officer erases a person and asks about an unknown
one. Then every log file of the stack is scanned for each value. The scan is shown to find
what is there: the same values are in the delivered e-mail (outside the system)."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from deploy.mailbox import REFUSED_DOMAIN
from deploy.run import DEMO_PRIVACY_OFFICER_KEY
from deploy.stack import Stack
from shared import cli
from shared.contracts import Topics
from tests.e2e.conftest import headers, make_signal, post, query, wait_for_status

pytestmark = pytest.mark.e2e


def _person(email_domain: str) -> dict[str, str]:
    """Identifying values no log line could contain by chance."""
    tag = uuid.uuid4().hex[:6]
    digits = "".join(random.choices("0123456789", k=8))
    postcode = f"{random.randint(1000, 9999)}{''.join(random.choices('KLMNPRTVWXZ', k=2))}"
    return {
        "name": f"Zebulon Quackenbush-{tag}",
        "email": f"zq.{tag}@{email_domain}",
        "phone": f"+31 6 {digits[:4]} {digits[4:]}",
        "phone_digits": f"06{digits}",
        "postcode": postcode,
        "postcode_spaced": f"{postcode[:4]} {postcode[4:]}",
        "address": f"Quackenbushlaan {random.randint(100, 999)}",
        "note": f"Mevrouw Quackenbush-{tag} vertelt dat haar man 's nachts dwaalt",
        "condition": f"ziekte van Quackenbush {tag}",
        "reference": f"HIS-QB-{tag}",
    }


def _signal(person: dict[str, str], **changes: Any) -> dict[str, Any]:
    """The demo signal about ``person``; ``changes`` as make_signal takes them, applied last."""
    signal = make_signal(
        **{
            "caregiver__name": person["name"],
            "caregiver__email": person["email"],
            "caregiver__phone": person["phone"],
            "caregiver__postcode": person["postcode_spaced"],
            "care_recipient__condition": person["condition"],
            "source__reference": person["reference"],
            "note": f"{person['note']}; woont op {person['address']}, {person['postcode']}",
        }
        | changes
    )
    return signal


def _identity(person: dict[str, str]) -> dict[str, Any]:
    """The person as the signals identified them (name, birth year and postcode come first)."""
    birth_year = make_signal()["caregiver"]["birth_year"]
    return {"caregiver": {"name": person["name"], "birth_year": birth_year, "postcode": person["postcode_spaced"]}}


def _scannable(person: dict[str, str]) -> dict[str, str]:
    """The values to look for (the address is only ever written next to the postcode)."""
    return {k: v for k, v in person.items() if k != "address"}


def _found(files: list[Path], values: dict[str, str]) -> dict[str, list[str]]:
    """Which value is in which file (case-insensitive)."""
    hits: dict[str, list[str]] = {}
    for path in files:
        text = path.read_text(errors="replace").lower()
        for name, value in values.items():
            if value.lower() in text:
                hits.setdefault(name, []).append(path.name)
    return hits


async def _until(check: Any, what: str, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.3)


async def test_the_log_files_hold_no_identifying_value(client: httpx.AsyncClient, stack: Stack) -> None:
    delivered, refused, poisoned = _person("example.nl"), _person(REFUSED_DOMAIN), _person("example.nl")

    # Invalid requests: 422s that must not echo the values anywhere.
    for bad in (
        {"caregiver__birth_year": 1800},
        {"caregiver__email": "not an address"},
        {"caregiver__municipality_code": "Leusden"},
    ):
        answer = await post(client, _signal(delivered, **bad))
        assert answer.status_code == 422, answer.text
        assert delivered["name"] not in answer.text and delivered["phone"] not in answer.text
    unknown_field = _signal(refused) | {"huisadres": f"{refused['address']} {refused['postcode']}"}
    assert (await post(client, unknown_field)).status_code == 422

    # Two signals that flow: one delivered to the caregiver, one refused by the relay (550).
    ids = {}
    for person in (delivered, refused):
        answer = await post(client, _signal(person), **{"Idempotency-Key": str(uuid.uuid4())})
        assert answer.status_code == 202, answer.text
        ids[person["email"]] = answer.json()["id"]
        await wait_for_status(client, ids[person["email"]], {"notified"}, timeout=60)

    async def refused_failed() -> bool:
        rows = await query(
            stack,
            "notify",
            """SELECT status, last_error FROM notifications
                                               WHERE signal_id = $1 AND recipient_role = 'caregiver'""",
            uuid.UUID(ids[refused["email"]]),
        )
        return bool(rows) and rows[0]["status"] == "failed"

    await _until(refused_failed, "the refused caregiver's message to fail")
    [failure] = await query(
        stack,
        "notify",
        "SELECT last_error FROM notifications WHERE signal_id = $1 AND recipient_role = 'caregiver'",
        uuid.UUID(ids[refused["email"]]),
    )
    assert "550" in failure["last_error"] and refused["email"] not in failure["last_error"]

    # A poison event carrying the values: dead-lettered by screening.
    poison_id = str(uuid.uuid4())
    payload = _signal(poisoned) | {"signal_id": "not-a-uuid"}
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            Topics.SIGNALS,
            json.dumps(
                {
                    "event_id": poison_id,
                    "event_type": "signal.received",
                    "correlation_id": "privacy-scan",
                    "producer": "test",
                    "subject": f"privacy-scan-{poison_id}",
                    "payload": payload,
                }
            ).encode(),
            key=f"privacy-scan-{poison_id}".encode(),
        )
    finally:
        await producer.stop()

    async def dead_lettered() -> bool:
        return bool(await query(stack, "screening", "SELECT 1 FROM dead_letters WHERE event_id = $1", poison_id))

    await _until(dead_lettered, "the poison event to be dead-lettered")

    # The privacy officer erases the refused caregiver, and asks about someone unknown (404).
    officer = headers(DEMO_PRIVACY_OFFICER_KEY)
    erased = await client.post("/v1/erasures", json=_identity(refused), headers=officer)
    assert erased.status_code == 202, erased.text
    unknown = await client.post("/v1/erasures", json=_identity(poisoned), headers=officer)
    assert unknown.status_code == 404 and poisoned["name"] not in unknown.text
    await asyncio.sleep(2)  # the erasure's events reach the other services, which log what they do

    logs = sorted((stack.config.data_dir / "logs").glob("*.log"))
    assert {"signals.log", "screening.log", "matching.log", "notify.log", "municipalities.log"} <= {
        p.name for p in logs
    }
    for person in (delivered, refused, poisoned):
        assert _found(logs, _scannable(person)) == {}

    # The scan finds what is there: the delivered caregiver's e-mail (outside the system)
    # greets them by name at their address.
    mails = sorted((stack.config.data_dir / "mailbox").glob("*.eml"))
    hits = _found(mails, _scannable(delivered))
    assert {"name", "email"} <= hits.keys(), hits
    # And a line that did carry the values would be found in a log file.
    control = stack.config.data_dir / "logs" / "control.log"
    control.write_text(json.dumps({"event": "payload", "caregiver": _signal(delivered)["caregiver"]}))
    try:
        assert {"name", "email", "phone", "postcode_spaced"} <= _found([control], _scannable(delivered)).keys()
    finally:
        control.unlink()


async def test_the_access_log_shows_who_touched_a_signal(
    client: httpx.AsyncClient,
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    person = _person("example.nl")
    signal_id = (await post(client, _signal(person))).json()["id"]
    await wait_for_status(client, signal_id, {"notified"}, timeout=60)
    # Another organisation probing for the signal: refused, and logged.
    probe = await client.get(f"/v1/signals/{signal_id}", headers=headers("demo-wijkteam-key"))
    assert probe.status_code == 404
    officer = headers(DEMO_PRIVACY_OFFICER_KEY)
    assert (
        await client.post("/v1/erasures", json=_identity(_person("example.nl")), headers=officer)
    ).status_code == 404

    # The privacy officer's CLI, reading every service's database as the stack configured it.
    for name, process in stack.services.items():
        variable = f"{name.upper()}_DATABASE_URL"
        monkeypatch.setenv(variable, process.env[variable])
    capsys.readouterr()
    assert await cli.TOOL.run(cli.TOOL.parser.parse_args(["access-log", "--subject", signal_id])) == 0
    shown = capsys.readouterr().out
    lines = [line.split() for line in shown.splitlines()[1:]]
    # at, service, role, credential, organisation, on behalf of, action, type, id, outcome
    seen = {(line[1], line[2], line[6], line[9]) for line in lines}
    assert {
        ("signals", "partner", "create", "ok"),
        ("signals", "partner", "read", "ok"),
        ("signals", "partner", "read", "not_found"),
    } <= seen  # the last: the other organisation's probe
    assert len({line[4] for line in lines}) == 2  # the GP and the neighbourhood team, by id
    assert person["name"] not in shown and person["email"] not in shown

    assert await cli.TOOL.run(cli.TOOL.parser.parse_args(["access-log", "--limit", "20"])) == 0
    recent = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert any(line[2] == "privacy_officer" and line[6] == "erase" and line[9] == "not_found" for line in recent)
