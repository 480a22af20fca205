"""The ingest API's request and response models.

Requests subclass the event contracts and tighten them: unknown fields are rejected (a
partner must not send health data we would silently drop) and values are range-checked, so
a bad request gets a 422 naming the field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.contracts import (
    Caregiver,
    CareRecipient,
    CareSituation,
    CareTask,
    CareTaskKind,
    Consent,
    ErasureScope,
    InstrumentAnswers,
    Observation,
    ReferralStatus,
    RejectionReason,
    RiskLevel,
    Source,
    Urgency,
)
from shared.fields import Documented, EmailAddress, SingleLine
from shared.municipality_codes import check_code, municipalities

_STRICT = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

# Names, references and labels may reach an e-mail subject or header: one line each.
Text = Annotated[SingleLine, StringConstraints(min_length=1, max_length=200)]
# An existing municipality (the CBS list): an unknown code gets a 422, never a topic. The
# schema's pattern lists them (an enum would make a generated test post one signal per code).
MunicipalityCode = Annotated[
    str,
    StringConstraints(pattern=r"^GM\d{4}$"),
    AfterValidator(check_code),
    Documented(pattern="^GM(" + "|".join(sorted(code[2:] for code in municipalities())) + ")$"),
]
Postcode = Annotated[str, StringConstraints(pattern=r"^[1-9]\d{3} ?[A-Za-z]{2}$|^[1-9]\d{3}$")]
Email = EmailAddress
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()-]{6,20}$")]


class SourceIn(Source):
    model_config = _STRICT
    reference: Text | None = None


class CaregiverIn(Caregiver):
    model_config = _STRICT
    name: Text | None = None
    email: Email | None = None
    phone: Phone | None = None
    birth_year: int | None = Field(default=None, ge=1900, le=2030)
    postcode: Postcode | None = None
    municipality_code: MunicipalityCode
    own_question: Annotated[str, StringConstraints(max_length=1000)] | None = None


class CareRecipientIn(CareRecipient):
    model_config = _STRICT
    relationship: Text | None = None
    condition: Text | None = None
    age: int | None = Field(default=None, ge=0, le=130)


class CareSituationIn(CareSituation):
    model_config = _STRICT
    hours_per_week: float | None = Field(default=None, ge=0, le=168)
    duration_months: int | None = Field(default=None, ge=0, le=1200)


class InstrumentIn(InstrumentAnswers):
    model_config = _STRICT
    id: Text
    answers: list[int] = Field(max_length=100)


class ConsentIn(Consent):
    model_config = _STRICT


class CareTaskIn(CareTask):
    model_config = _STRICT
    hours_per_week: float | None = Field(default=None, ge=0, le=168)


class SignalIn(BaseModel):
    """A signal about a caregiver who may be overburdened."""

    model_config = _STRICT

    source: SourceIn
    caregiver: CaregiverIn
    care_recipient: CareRecipientIn = CareRecipientIn()
    care_situation: CareSituationIn = CareSituationIn()
    observations: list[Observation] = Field(default=[], max_length=30)
    instrument: InstrumentIn | None = None
    consent: ConsentIn = ConsentIn()
    urgency: Urgency = Urgency.NORMAL
    note: Annotated[str, StringConstraints(max_length=4000)] | None = None
    care_tasks: list[CareTaskIn] = Field(default=[], max_length=len(CareTaskKind))


class Accepted(BaseModel):
    id: UUID
    status: str
    status_url: str


class TimelineEntry(BaseModel):
    stage: str
    at: datetime
    summary: str | None = None


class ScreeningView(BaseModel):
    instrument: str | None = None
    score: float | None = None
    band: str | None = None
    risk_level: RiskLevel
    reasons: list[str] = []
    needs: list[str] = []
    next_instrument: str | None = None


class NotificationView(BaseModel):
    recipient: str
    channel: str
    template: str
    status: str
    at: datetime
    detail: str | None = None


class ReferralView(BaseModel):
    """A referral to one provider, as its latest update left it."""

    referral_id: UUID
    service_name: str
    status: ReferralStatus
    reason_code: RejectionReason | None = None
    updated_by: str
    at: datetime


class FollowUpView(BaseModel):
    support_arrived: bool
    at: datetime


class SignalStatus(BaseModel):
    id: UUID
    status: str
    received_at: datetime
    timeline: list[TimelineEntry]
    screening: ScreeningView | None = None
    escalation: dict[str, Any] | None = None
    matches: list[dict[str, Any]] = []
    no_match_reason: str | None = None
    notifications: list[NotificationView] = []
    referrals: list[ReferralView] = []
    follow_up: FollowUpView | None = None
    # A person has the case (the caregiver consultant's work queue), and when they closed it.
    taken_up: dict[str, Any] | None = None
    closed: dict[str, Any] | None = None


def _present(*names: str) -> dict[str, Any]:
    """A JSON Schema branch: these fields are given, and not null."""
    return {"required": list(names), "properties": {name: {"not": {"type": "null"}} for name in names}}


class ErasureCaregiver(BaseModel):
    """The caregiver as the signals identified them: name, birth year and postcode together,
    or the e-mail address, or the phone number."""

    # The identity rule in the schema too, so a client (and a generated test) can know it.
    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={"anyOf": [_present("name", "birth_year", "postcode"), _present("email"), _present("phone")]},
    )
    name: Text | None = None
    birth_year: int | None = Field(default=None, ge=1900, le=2030)
    postcode: Postcode | None = None
    email: Email | None = None
    phone: Phone | None = None


class ErasureIn(BaseModel):
    """Erase a caregiver: identify them, or name signals about them."""

    # One of the two, as the validator below says: the other absent or null.
    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "oneOf": [
                {**_present("caregiver"), "not": _present("signal_ids")},
                {**_present("signal_ids"), "not": _present("caregiver")},
            ]
        },
    )
    caregiver: ErasureCaregiver | None = None
    signal_ids: list[UUID] | None = Field(default=None, min_length=1, max_length=100)
    scope: ErasureScope | None = Field(
        default=None,
        description=(
            "'signals': withdraw your organisation's own signals about the caregiver (a partner key's "
            "only scope, and its default); 'caregiver': erase the person across every organisation "
            "(GDPR art. 17; the privacy officer's credential only, and its default)"
        ),
    )

    @model_validator(mode="after")
    def _one_way(self) -> ErasureIn:
        if (self.caregiver is None) == (self.signal_ids is None):
            raise ValueError("give either 'caregiver' or 'signal_ids'")
        return self


class ErasureAccepted(BaseModel):
    """No counts: how many records there were would tell about other organisations' signals."""

    id: UUID
    status: str
    scope: ErasureScope
    status_url: str


class ErasureStatus(BaseModel):
    id: UUID
    status: str = Field(description="'propagating' until the other services have been told, then 'propagated'")
    scope: ErasureScope
    requested_at: datetime


class DataKey(BaseModel):
    """A caregiver's data key, for a service that consumes their sealed signals (internal)."""

    key_id: str
    key: str  # base64


class DataKeyRequest(BaseModel):
    """Data keys wanted at once: a consumer asks for those of a whole batch of events."""

    key_ids: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]] = Field(max_length=500)


class DataKeys(BaseModel):
    """The keys of a ``DataKeyRequest`` that exist; one left out was destroyed (or is unknown)."""

    keys: list[DataKey]
