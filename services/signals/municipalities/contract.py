"""The anonymised event a municipality receives: its schema (published as AsyncAPI) and topic."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.signals.municipalities.districts import Area
from shared.contracts import (
    Envelope,
    Need,
    ReferralStatus,
    RejectionReason,
    RiskLevel,
    SourceKind,
)

TOPIC_PATTERN = "municipality.{municipality_code}.events.v1"


def topic_for(municipality_code: str) -> str:
    return TOPIC_PATTERN.format(municipality_code=municipality_code)


RecipientRole = Literal["caregiver", "referrer", "provider", "consultant"]
DeliveryStatus = Literal["delivered", "failed", "suppressed"]


class MunicipalEvent(BaseModel):
    """One pipeline event about one signal, anonymised. Fields are empty where not known yet."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    municipality_code: str = Field(examples=["GM0327"])
    week: str = Field(description="ISO week of the event", examples=["2026-W47"])
    area: Area | None = Field(None, description="CBS district (wijk), else the PC4 area")
    age_band: str | None = Field(None, description="the caregiver's age in 10-year bands", examples=["60-69"])
    source_kind: SourceKind
    risk_level: RiskLevel | None = None
    needs: list[Need] = []
    service_categories: list[str] = Field([], description="taxonomy codes of the proposed services")
    hours_to_match: float | None = Field(None, description="from the signal to the first proposal")
    hours_to_first_contact: float | None = Field(
        None, description="from the signal to the first time the caregiver was reached: a message "
        "delivered to the caregiver, or a provider accepting the referral")
    recipient_role: RecipientRole | None = Field(None, description="notification.sent: to whom")
    delivery_status: DeliveryStatus | None = Field(None, description="notification.sent: what came of it")
    referral_status: ReferralStatus | None = None
    rejection_reason: RejectionReason | None = None
    support_arrived: bool | None = Field(None, description="followup.recorded: did the support arrive?")


class MunicipalEnvelope(Envelope[MunicipalEvent]):
    """The project's envelope around an anonymised event. ``subject`` (the Kafka key) is the
    caregiver's pseudonym for this municipality, a keyed HMAC with the municipality's own key;
    ``correlation_id`` is the signal's pseudonym, the same on every event about one signal;
    ``occurred_at`` is the start of the ISO week (Monday 00:00 UTC), never the exact moment;
    ``causation_id`` is always empty."""
