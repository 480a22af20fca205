import base64
import json
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from services.matching import domain as matching
from shared import crypto, sealing
from shared.contracts import (
    SEALED_VERSION,
    MatchesProposed,
    RawEnvelope,
    SelfReferralConfirmationRequested,
    SignalReceived,
    SignalScreened,
)
from shared.outbox import new_event
from tests.unit.test_notify_domain import proposed


def keyring(*ids: str) -> crypto.MasterKeyring:
    return crypto.MasterKeyring.parse(",".join(f"{i}:{base64.b64encode(os.urandom(32)).decode()}" for i in ids))


def test_a_value_round_trips_and_names_its_key_but_not_its_content():
    key = crypto.new_data_key()
    token = crypto.encrypt(key, "k1", "signal.personal", b"Jan Jansen")
    assert token.startswith("v1.k1.") and "Jan" not in token and crypto.key_id_of(token) == "k1"
    assert crypto.decrypt(key, token, "signal.personal") == b"Jan Jansen"
    # A fresh nonce each time: equal values do not give equal ciphertexts.
    assert crypto.encrypt(key, "k1", "signal.personal", b"x") != crypto.encrypt(key, "k1", "signal.personal", b"x")


def test_tampering_wrong_key_wrong_key_id_and_wrong_purpose_are_refused():
    key = crypto.new_data_key()
    token = crypto.encrypt(key, "k1", "signal.personal", b"secret")
    version, key_id, blob = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4)))
    raw[-1] ^= 1
    flipped = f"{version}.{key_id}.{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"
    with pytest.raises(crypto.TamperedError):
        crypto.decrypt(key, flipped, "signal.personal")
    with pytest.raises(crypto.TamperedError):
        crypto.decrypt(crypto.new_data_key(), token, "signal.personal")
    with pytest.raises(crypto.TamperedError):  # the same bytes presented as another key's
        crypto.decrypt(key, f"{version}.k2.{blob}", "signal.personal")
    with pytest.raises(crypto.TamperedError):  # moved to another field
        crypto.decrypt(key, token, "signal.screening")
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt(key, "v0.k1.AAAA", "signal.personal")


def test_data_keys_are_wrapped_by_the_current_master_key_and_rotation_rewraps_them():
    old = keyring("m1")
    data_key = crypto.new_data_key()
    wrapped = old.wrap("dk1", data_key)
    assert crypto.key_id_of(wrapped) == "m1" and base64.b64encode(data_key).decode() not in wrapped
    with pytest.raises(crypto.TamperedError):  # bound to its data key id
        old.unwrap("dk2", wrapped)
    both = crypto.MasterKeyring({"m2": os.urandom(32), **old._keys}, "m2")
    assert not both.is_current(wrapped) and both.unwrap("dk1", wrapped) == data_key
    rewrapped = both.rewrap("dk1", wrapped)
    assert both.is_current(rewrapped) and both.unwrap("dk1", rewrapped) == data_key
    new_only = crypto.MasterKeyring({"m2": both._keys["m2"]}, "m2")
    assert new_only.unwrap("dk1", rewrapped) == data_key
    with pytest.raises(crypto.UnknownMasterKeyError):  # the old master key is retired
        new_only.unwrap("dk1", wrapped)


def test_keyring_settings_are_checked():
    assert keyring("a", "b").current == "a"
    for bad in ("", "nokey", "a:notbase64!", f"a:{base64.b64encode(b'short').decode()}"):
        with pytest.raises(ValueError):
            crypto.MasterKeyring.parse(bad)


class Keys:
    def __init__(self, **keys: bytes) -> None:
        self.keys = keys

    async def data_key(self, key_id: str, subject: str) -> bytes | None:
        return self.keys.get(key_id)

    async def prefetch(self, wanted: Mapping[str, str]) -> None:
        pass

    def forget_subject(self, subject: str) -> None:
        pass

    async def close(self) -> None:
        pass


def sealed_signal(key: bytes) -> SignalReceived:
    signal = proposed(note="Moeder heeft dementie, vader is boos", caregiver={"name": "Piet Puk"}).signal
    signal = signal.model_copy(
        update={"care_recipient": signal.care_recipient.model_copy(update={"condition": "dementie"})}
    )
    return sealing.seal_signal(signal, "dk1", key)


async def test_a_sealed_event_carries_no_personal_value_and_opens_to_the_same_signal():
    key = crypto.new_data_key()
    signal = sealed_signal(key)
    event = new_event("signal.received", signal, producer="signals", subject="p1", correlation_id="c")
    envelope, body = sealing.wire(event)
    assert envelope.version == SEALED_VERSION and json.loads(body)["version"] == SEALED_VERSION
    for value in ("Piet Puk", "dementie", "Moeder", signal.caregiver.email, signal.caregiver.postcode):
        assert value not in body
    raw = RawEnvelope.model_validate_json(body)
    assert raw.payload["caregiver"] == {"municipality_code": signal.caregiver.municipality_code}
    assert sealing.key_ids(raw.payload) == {"dk1"}, "a consumer can gather a batch's keys before opening"
    opened = SignalReceived.model_validate(await sealing.open_payload(raw.payload, Keys(dk1=key), "p1"))
    assert opened == signal
    with pytest.raises(sealing.KeyErased):  # crypto-shredded
        await sealing.open_payload(raw.payload, Keys(), "p1")


async def test_a_self_referral_confirmation_travels_sealed_and_is_gone_with_its_key():
    key = crypto.new_data_key()
    request = SelfReferralConfirmationRequested(
        referral_id=uuid.uuid4(),
        email="zelf.melder@example.nl",
        name="Zelf Melder",
        confirm_url="https://s.example.nl/aanmelden/bevestigen/geheim",
        expires_at=datetime.now(UTC),
    )
    event = new_event(
        "selfreferral.confirmation_requested",
        sealing.seal_payload(request, "dk1", key),
        producer="signals",
        subject="r1",
        correlation_id="c",
    )
    _, body = sealing.wire(event)
    for value in ("zelf.melder@example.nl", "Zelf Melder", "geheim"):
        assert value not in body
    raw = RawEnvelope.model_validate_json(body)
    opened = SelfReferralConfirmationRequested.model_validate(
        await sealing.open_payload(raw.payload, Keys(dk1=key), "r1")
    )
    assert opened.model_copy(update={"sealed": None}) == request
    with pytest.raises(sealing.KeyErased):
        await sealing.open_payload(raw.payload, Keys(), "r1")


async def test_later_events_are_slim_the_note_and_care_recipient_stop_at_screening():
    key = crypto.new_data_key()
    signal = sealing.slim(sealed_signal(key))
    assert signal.note is None and signal.care_recipient.condition is None and signal.sealed.screening is None
    event = proposed()
    event = MatchesProposed.model_validate({**event.model_dump(), "signal": signal.model_dump()})
    _, body = sealing.wire(new_event("matches.proposed", event, producer="m", subject="p1", correlation_id="c"))
    raw = RawEnvelope.model_validate_json(body)
    opened = MatchesProposed.model_validate(await sealing.open_payload(raw.payload, Keys(dk1=key), "p1"))
    assert opened.signal.caregiver.name == "Piet Puk" and opened.signal.note is None
    assert opened.signal.care_recipient.condition is None


async def test_an_old_version_plaintext_event_still_opens_as_it_is():
    event = proposed()
    payload = json.loads(event.model_dump_json())
    assert await sealing.open_payload(payload, Keys(), "p1") == payload
    screened = SignalScreened(
        signal_id=event.signal_id,
        case_id=event.case_id,
        screened_at=event.proposed_at,
        result=event.result,
        signal=event.signal,
    )
    assert screened.result.recipient_groups is None
    old = screened.model_copy(
        update={
            "signal": event.signal.model_copy(
                update={"care_recipient": event.signal.care_recipient.model_copy(update={"condition": "Dementie"})}
            )
        }
    )
    assert "dementia" in matching.request_from(old, 3).target_groups  # from the old event's condition
    new = old.model_copy(
        update={
            "signal": sealing.slim(old.signal),
            "result": old.result.model_copy(update={"recipient_groups": ["dementia"]}),
        }
    )
    assert "dementia" in matching.request_from(new, 3).target_groups  # from screening's judgement
