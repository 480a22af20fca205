import json
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from deploy.stack import REPO
from services.signals import domain
from services.signals.domain import Organisation
from services.signals.schemas import SignalIn
from shared.contracts import SourceKind

DEMO = json.loads((REPO / "deploy" / "demo" / "signal.json").read_text())


def test_the_demo_signal_validates_and_becomes_an_event():
    signal = SignalIn.model_validate(DEMO)
    org = Organisation(uuid.uuid4(), "GP", "gp")
    event = domain.received_event(signal, signal_id=uuid.uuid4(), organisation=org, received_at=datetime.now(UTC))
    assert event.instrument.answers == DEMO["instrument"]["answers"]
    assert event.caregiver.municipality_code == "GM0327"


@pytest.mark.parametrize("kind", [k.value for k in SourceKind])
def test_every_source_kind_is_accepted(kind):
    assert SignalIn.model_validate(DEMO | {"source": {"kind": kind}}).source.kind == kind


def test_the_request_hash_ignores_formatting_but_not_content():
    a = SignalIn.model_validate(DEMO)
    b = SignalIn.model_validate(json.loads(json.dumps(DEMO, indent=4)))
    c = SignalIn.model_validate(DEMO | {"urgency": "high"})
    assert domain.request_hash(a) == domain.request_hash(b) != domain.request_hash(c)


@pytest.mark.parametrize(
    "path,value",
    [
        (("caregiver", "municipality_code"), "0327"),
        (("caregiver", "postcode"), "ABCD"),
        (("caregiver", "email"), "not-an-address"),
        (("care_recipient", "age"), 300),
        (("caregiver", "unknown_field"), 1),
    ],
)
def test_invalid_values_name_their_field(path, value):
    data = json.loads(json.dumps(DEMO))
    data[path[0]][path[1]] = value
    with pytest.raises(ValidationError) as info:
        SignalIn.model_validate(data)
    assert tuple(info.value.errors()[0]["loc"][:2]) == path


def test_signals_without_identity_are_not_merged():
    data = json.loads(json.dumps(DEMO))
    for field in ("name", "email", "phone"):
        data["caregiver"].pop(field)
    signal = SignalIn.model_validate(data)
    a, b = uuid.uuid4(), uuid.uuid4()
    assert domain.caregiver_pseudonym(b"k", signal, a) != domain.caregiver_pseudonym(b"k", signal, b)


def test_status_view_follows_the_furthest_stage():
    now = datetime.now(UTC)
    signal = {"id": uuid.uuid4(), "status": "notified", "received_at": now, "case_id": None}
    stages = [
        {"stage": "received", "occurred_at": now, "detail": {}},
        {
            "stage": "screened",
            "occurred_at": now,
            "detail": {
                "result": {"risk_level": "overburdened", "score": 11, "band": "heavy", "instrument": "ediz_plus"}
            },
        },
        {"stage": "matched", "occurred_at": now, "detail": {"matches": [], "no_match_reason": "no services in area"}},
        {
            "stage": "notified",
            "occurred_at": now,
            "detail": {
                "recipient_role": "referrer",
                "channel": "status_view",
                "template": "referrer_update",
                "status": "delivered",
            },
        },
    ]
    view = domain.status_view(domain.Signal(**signal), [domain.StageRecord(**s) for s in stages])
    assert [t.stage for t in view.timeline] == ["received", "screened", "matched", "notified"]
    assert view.screening.band == "heavy" and view.no_match_reason == "no services in area"
    assert view.notifications[0].recipient == "referrer"
    assert view.timeline[2].summary == "no services in area"
