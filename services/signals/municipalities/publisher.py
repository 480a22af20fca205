"""Publishes the anonymised event for every stage signals records, in the stage's own
transaction: the facts are advanced, the event is anonymised, appended to the
municipality's stream table (for replay) and queued in the outbox for its Kafka topic.

Topics are created with explicit partitions (``KAFKA_PARTITIONS``): at start-up for every
municipality with a credential, a stream or a district table, and otherwise when a
municipality's first event comes along, before anything is written, so the outbox relay
never publishes to a topic that does not exist (a broker that creates topics on first use
would give it its own default partition count)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from services.signals.config import SignalsSettings
from services.signals.municipalities import districts, repository
from services.signals.municipalities.anonymise import (
    advance,
    anonymise,
    facts_of_signal,
    week_start,
)
from services.signals.municipalities.contract import topic_for
from services.signals.municipalities.pseudonyms import (
    municipality_key,
    stream_pseudonyms,
)
from shared.contracts import Caregiver, SourceKind
from shared.kafka import ensure_topics
from shared.outbox import add_event, new_event

log = structlog.get_logger(__name__)


class MunicipalPublisher:
    """Turns recorded stages into anonymised events, creating topics as they are needed."""

    def __init__(self, settings: SignalsSettings) -> None:
        self._settings = settings
        self._ready: set[str] = set()

    async def prepare_topics(self) -> None:
        """Create the topics of the municipalities known so far. Runs before the service
        starts: on the embedded broker a restart replays the retained events, and the relay
        must not be the first to publish to a topic."""
        conn = await asyncpg.connect(self._settings.database_url)
        try:
            known = await repository.streamed_municipalities(conn)
        finally:
            await conn.close()
        await self.ensure_topics([*known, *districts.municipalities()])

    async def ensure_topics(self, municipality_codes: Iterable[str]) -> None:
        missing = [topic_for(code) for code in dict.fromkeys(municipality_codes)]
        missing = [topic for topic in missing if topic not in self._ready]
        if missing:
            await ensure_topics(self._settings.kafka, missing)
            self._ready.update(missing)

    async def record(
        self, conn: asyncpg.Connection, signal_id: UUID, stage: str, occurred_at: datetime,
        detail: dict[str, Any],
    ) -> None:
        """Publish the anonymised event of a stage just recorded for a known signal."""
        source = await repository.signal_source(conn, signal_id)
        # The first stage computes the facts from the accepted body, later ones advance them
        # (a signal accepted before streams existed gets its facts at its next stage).
        facts = await repository.facts_for_update(conn, signal_id) or facts_of_signal(
            Caregiver.model_validate(source["caregiver"]), SourceKind(source["source_kind"]),
            source["received_at"],
        )
        facts = advance(facts, stage, detail, occurred_at, source["received_at"])
        await repository.save_facts(conn, signal_id, facts)
        anonymised = anonymise(stage, detail, facts, occurred_at)
        if anonymised is None:
            log.warning("stage not anonymised: dropped from the municipality stream", stage=stage)
            return
        event_type, payload = anonymised
        code = facts.municipality_code
        await self.ensure_topics([code])  # known already but for a municipality's first event
        salt = await repository.salt_for(conn, source["caregiver_pseudonym"])
        names = stream_pseudonyms(
            municipality_key(self._settings.municipal_master_key.get_secret_value().encode(), code),
            salt, signal_id,
        )
        event = new_event(
            event_type, payload, producer=self._settings.service_name, subject=names.caregiver,
            correlation_id=names.signal,
        ).model_copy(update={"occurred_at": week_start(occurred_at)})
        await add_event(conn, topic_for(code), event)
        await repository.append_event(conn, code, event.event_id, event_type, event.model_dump_json())
