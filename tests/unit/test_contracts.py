import uuid

from shared.contracts import PAYLOADS, RawEnvelope, Topics
from shared.outbox import event_headers, new_event
from tests.unit.test_notify_domain import proposed


def test_envelopes_round_trip_and_ignore_unknown_fields():
    payload = proposed()
    event = new_event("matches.proposed", payload, producer="matching", subject="abc", correlation_id="c")
    data = event.model_dump(mode="json")
    data["added_in_a_later_version"] = True
    data["payload"]["also_new"] = {"x": 1}
    raw = RawEnvelope.model_validate(data)
    # As the consumer types it: the payload by the event type's class.
    assert PAYLOADS[raw.event_type].model_validate(raw.payload) == payload and raw.event_id == event.event_id


def test_headers_carry_what_consumers_route_and_trace_by():
    event = new_event(
        "matches.proposed",
        proposed(),
        producer="matching",
        subject="abc",
        correlation_id="corr-1",
        causation_id=uuid.uuid4(),
    )
    headers = event_headers(event)
    assert headers["correlation_id"] == "corr-1" and headers["event_type"] == "matches.proposed"


def test_every_topic_has_a_version_and_a_dlq():
    for topic in Topics.ALL:
        assert topic.endswith(".v1") and Topics.dlq(topic) == f"{topic}.dlq"
