"""Consumers: each pipeline event becomes at most one anonymous record that waits for
release, in the inbox's transaction; ``caregiver.erased`` drops the person's waiting
records. Events about a municipality this deployment does not serve are dropped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from services.municipalities import records, repository
from services.municipalities.districts import MUNICIPALITIES, is_known
from services.municipalities.domain import Record
from shared.consumer import Route
from shared.contracts import (
    CaregiverErased,
    Envelope,
    ErasureScope,
    EventType,
    FollowUpRecorded,
    MatchesProposed,
    ReferralUpdated,
    SignalScreened,
    Topics,
)
from shared.service import Runtime
from shared.tombstones import record_tombstone

log = structlog.get_logger(__name__)


def _keeping(derive: Callable[[Any, str, datetime], Record | None]) -> Callable[..., Any]:
    async def handle(conn: asyncpg.Connection, event: Envelope[Any]) -> None:
        record = derive(event.payload, event.subject, datetime.now(UTC))
        if record is None:
            return
        if not is_known(record.municipality_code):
            log.info("event for a municipality not served here dropped", event_type=event.event_type)
            return
        await repository.add_waiting(conn, record)

    return handle


async def on_erased(conn: asyncpg.Connection, event: Envelope[CaregiverErased]) -> None:
    p = event.payload
    # Events still in flight about the erased signals must not queue new records.
    await record_tombstone(conn, p.caregiver_pseudonym, p.signal_ids, p.case_ids)
    if p.scope is ErasureScope.SIGNALS:
        # A withdrawal of some signals: the person stays (other organisations' signals), and
        # what waits for release is anonymous facts.
        return
    # The person token is per municipality; the erasure does not say which, so try each.
    for code in MUNICIPALITIES:
        await repository.forget_person(conn, records.person_token(code, p.caregiver_pseudonym))


def register_handlers(runtime: Runtime) -> None:
    runtime.consumer.subscribe({
        Topics.SIGNALS: {EventType.CAREGIVER_ERASED: Route(CaregiverErased, on_erased)},
        Topics.SCREENING: {EventType.SIGNAL_SCREENED: Route(SignalScreened, _keeping(records.from_screened))},
        Topics.MATCHING: {EventType.MATCHES_PROPOSED: Route(MatchesProposed, _keeping(records.from_matches))},
        Topics.NOTIFY: {
            EventType.REFERRAL_UPDATED: Route(ReferralUpdated, _keeping(records.from_referral)),
            EventType.FOLLOW_UP_RECORDED: Route(FollowUpRecorded, _keeping(records.from_follow_up)),
        },
    })
