"""The municipalities' use cases: keep an anonymous record of a pipeline event, forget an
erased caregiver's waiting records, release the groups that reached k (and suppress what
never will), manage a municipality's webhooks, and gather the released groups of closed
months for its statistics.

Each takes a ``MunicipalitiesUnitOfWork`` (the store inside one transaction, and the outbox)
and plain inputs; unit tests run them on an in-memory fake
(tests/unit/test_municipalities_service.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID, uuid4

import structlog

from services.municipalities import domain, records, reports
from services.municipalities.contract import envelope_for, topic_for
from services.municipalities.districts import MUNICIPALITIES, is_known
from services.municipalities.domain import Record, Webhook
from services.municipalities.repository import MunicipalStore
from shared.contracts import CaregiverErased, ErasureScope
from shared.uow import Repository, UnitOfWork

log = structlog.get_logger(__name__)


class MunicipalitiesUnitOfWork(UnitOfWork):
    """One transaction of the municipalities database: its store, and the outbox."""

    store = Repository(MunicipalStore)


@dataclass(frozen=True)
class ReleasePolicy:
    """What a data protection officer reviews: k and the longest a record waits."""

    k: int
    max_delay: timedelta
    producer: str


async def keep_record(uow: MunicipalitiesUnitOfWork, record: Record | None) -> bool:
    """Let the record wait for release; an event that makes none, or one about a municipality
    not served here, is dropped. True when kept."""
    if record is None:
        return False
    if not is_known(record.municipality_code):
        log.info("event for a municipality not served here dropped")
        return False
    await uow.store.add_waiting(record)
    return True


async def erase(uow: MunicipalitiesUnitOfWork, erased: CaregiverErased) -> None:
    """Events still in flight about the erased signals must not queue new records; the
    person's waiting records go. A withdrawal of some signals keeps them: the person stays
    (other organisations' signals), and what waits for release is anonymous facts."""
    await uow.record_erasure(erased)
    if erased.scope is ErasureScope.SIGNALS:
        return
    # The person token is per municipality; the erasure does not say which, so try each.
    for code in MUNICIPALITIES:
        await uow.store.forget_person(records.person_token(code, erased.caregiver_pseudonym))


async def release_due(uow: MunicipalitiesUnitOfWork, policy: ReleasePolicy, now: datetime) -> domain.Outcome:
    """Let the domain decide over every waiting record; append each released group to its
    municipality's stream and outbox, and delete what was released or suppressed. Another
    replica releasing at the same moment makes this a no-op."""
    if not await uow.store.try_release_lock():
        return domain.Outcome()
    rows = await uow.store.waiting_for_update()
    row_ids = {id(record): row_id for row_id, record in rows}
    outcome = domain.release([record for _, record in rows], now, k=policy.k, max_delay=policy.max_delay)
    release_id = str(uuid4())
    for group in outcome.released:
        envelope = envelope_for(group, release_id, policy.producer)
        code = group.key.municipality_code
        await uow.publish(topic_for(code), envelope)
        await uow.store.append_release(code, envelope.event_id, group.key.month, envelope.model_dump_json(), now)
    gone = [*(m for g in outcome.released for m in g.members), *outcome.suppressed]
    await uow.store.delete_waiting([row_ids[id(r)] for r in gone])
    return outcome


async def add_webhook(
    uow: MunicipalitiesUnitOfWork, code: str, url: str, secret: str, since: datetime | None
) -> Webhook:
    """Subscribe ``url`` from the groups released since ``since`` (None: new ones only);
    the URL was checked by the caller, before the transaction."""
    cursor = await uow.store.last_seq_before(code, since)
    return await uow.store.add_webhook(code, url, secret, cursor)


async def webhooks(uow: MunicipalitiesUnitOfWork, code: str) -> list[Webhook]:
    return await uow.store.webhooks_of(code)


async def delete_webhook(uow: MunicipalitiesUnitOfWork, code: str, webhook_id: UUID) -> bool:
    """True when the municipality had this webhook."""
    return await uow.store.delete_webhook(code, webhook_id)


async def stream_cursor(
    uow: MunicipalitiesUnitOfWork, code: str, last_event_id: int | None, since: datetime | None
) -> int:
    """Where a stream starts: after the client's last event, or at ``since`` (None: now)."""
    if last_event_id is not None:
        return last_event_id
    return await uow.store.last_seq_before(code, since)


async def closed_months(
    uow: MunicipalitiesUnitOfWork, code: str, months: list[date], now: datetime, max_delay: timedelta
) -> reports.ClosedMonths:
    """The released groups of each closed month asked for, and the months still open (a
    month is closed once every record of it was released or suppressed)."""
    shut = [f"{m:%Y-%m}" for m in months if reports.closed(m, now, max_delay)]
    by_month: dict[str, list[reports.Released]] = {m: [] for m in shut}
    for group in await uow.store.released_in(code, shut):
        by_month[group["month"]].append(group)
    return by_month, [f"{m:%Y-%m}" for m in months if f"{m:%Y-%m}" not in by_month]
