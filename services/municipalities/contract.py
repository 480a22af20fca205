"""What a municipality receives: one released group of anonymous records (its schema,
published as AsyncAPI), and the topic it goes to."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field

from services.municipalities.domain import Group
from shared.contracts import Envelope

TOPIC_PATTERN = "municipality.{municipality_code}.events.v1"
EVENT_TYPE = "records.released"


def topic_for(municipality_code: str) -> str:
    return TOPIC_PATTERN.format(municipality_code=municipality_code)


class ReleasedGroup(BaseModel):
    """``count`` records, of at least k different persons, that share every value below.
    A value is as precise as the group allowed (``level``): e.g. a district or only the
    municipality, a 10-year age band or a wider one, a week or only the month; ``any``
    where even that was too precise. Empty where the event does not tell."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    municipality_code: str = Field(examples=["GM0327"])
    record: str = Field(
        description="the pipeline event the records come from",
        examples=["signal.screened", "matches.proposed", "referral.updated", "followup.recorded"],
    )
    count: int = Field(description="records in the group (at least k persons behind them)")
    level: int = Field(description="generalisation level: 0 is the finest")
    month: str = Field(examples=["2026-11"])
    period: str = Field(
        description="the ISO week (within the month) at level 0, else the month", examples=["2026-W48", "2026-11"]
    )
    area: str | None = Field(None, description="CBS district (wijk) or PC4; the municipality code when generalised")
    age_band: str | None = Field(None, examples=["60-69", "60+", "any"])
    source_kind: str | None = Field(None, examples=["gp", "professional", "any"])
    risk_level: str | None = Field(None, examples=["overburdened", "elevated", "any"])
    needs: list[str] = Field([], description="needs, need groups, or ['any']")
    service_categories: list[str] = Field([], description="taxonomy codes of the proposed services, or ['any']")
    no_match_reason: str | None = Field(None, description="matches.proposed: why nothing could be proposed")
    time_to_support: str | None = Field(
        None,
        description="hours band from the signal to the proposal "
        "(matches.proposed) or to the accepted referral (referral.updated)",
    )
    referral_status: str | None = Field(None, description="referral.updated: the provider's answer (FHIR Task status)")
    rejection_reason: str | None = Field(None, description="referral.updated: the reason code of a rejection")
    support_arrived: bool | None = Field(None, description="followup.recorded: did the support arrive?")


class MunicipalEnvelope(Envelope[ReleasedGroup]):
    """The project's envelope around a released group. ``subject`` (the Kafka key) is the
    municipality code; ``correlation_id`` names the release tick (shared by the groups
    released together); ``occurred_at`` is the first day of the group's month;
    ``event_id`` is random. None of them says anything about a person or a record."""


def released_group(group: Group) -> ReleasedGroup:
    key = group.key
    return ReleasedGroup(
        municipality_code=key.municipality_code,
        record=key.kind,
        count=group.count,
        level=key.level,
        month=key.month,
        period=key.period,
        area=key.area,
        age_band=key.age_band,
        source_kind=key.source_kind,
        risk_level=key.risk_level,
        needs=list(key.needs),
        service_categories=list(key.service_categories),
        no_match_reason=key.no_match_reason,
        time_to_support=key.time_to_support,
        referral_status=key.referral_status,
        rejection_reason=key.rejection_reason,
        support_arrived=key.support_arrived,
    )


def envelope_for(group: Group, release_id: str, producer: str) -> MunicipalEnvelope:
    year, month = (int(x) for x in group.key.month.split("-"))
    return MunicipalEnvelope(
        event_id=uuid4(),
        event_type=EVENT_TYPE,
        producer=producer,
        subject=group.key.municipality_code,
        correlation_id=release_id,
        occurred_at=datetime(year, month, 1, tzinfo=UTC),
        payload=released_group(group),
    )
