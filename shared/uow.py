"""The unit of work: one connection, one transaction, and the events the state change publishes.

A use case in a service's ``service`` module takes a unit of work and never opens connections
or transactions itself. Event handlers get theirs from the consumer, which already holds the
transaction with the inbox row in it (shared/consumer.py); routes open one with ``begin``. The
events a use case publishes go to the outbox in the same transaction, so they leave if and only
if the state change commits. Each service subclasses it to declare its repositories
(``cases = Repository(CaseRepository)``) and to name the one topic it publishes to under its own
name (``emit``), and its unit tests use an in-memory fake with the same attributes (tests/fakes.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Generic, Self, TypeVar, overload
from uuid import UUID

import asyncpg

from shared import access_log
from shared.access_log import Action, Actor
from shared.contracts import CaregiverErased, Envelope, P
from shared.outbox import add_event, forget_erased, new_event
from shared.tombstones import record_tombstone

R = TypeVar("R")


class Repository(Generic[R]):
    """A repository of a unit of work, declared on its class: made over the unit of work's
    connection when first used, then kept on that unit of work."""

    def __init__(self, make: Callable[[asyncpg.Connection], R]) -> None:
        self.make = make

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, uow: None, owner: type) -> Self: ...
    @overload
    def __get__(self, uow: UnitOfWork, owner: type) -> R: ...
    def __get__(self, uow: UnitOfWork | None, owner: type) -> Self | R:
        if uow is None:
            return self
        made = self.make(uow.conn)
        # In the instance's __dict__, which wins over this descriptor from now on.
        uow.__dict__[self.name] = made
        return made


class UnitOfWork:
    """A connection inside an open transaction; subclasses add the service's repositories and,
    if the service publishes, its ``topic`` and its name as the events' ``producer``."""

    topic: ClassVar[str]
    producer: ClassVar[str]

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def publish(self, topic: str, event: Envelope[Any]) -> None:
        """Queue ``event`` for ``topic`` in this transaction's outbox."""
        await add_event(self.conn, topic, event)

    async def emit(
        self,
        event_type: str,
        payload: P,
        *,
        subject: str,
        correlation_id: str,
        causation_id: UUID | None = None,
    ) -> Envelope[P]:
        """Publish ``payload`` as an ``event_type`` event of this service on its topic; the envelope."""
        event = new_event(
            event_type,
            payload,
            producer=self.producer,
            subject=subject,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
        await self.publish(self.topic, event)
        return event

    async def log_access(
        self,
        actor: Actor,
        action: Action,
        subject_type: str,
        subject_ids: UUID | str | Iterable[UUID | str],
        *,
        outcome: str = "ok",
    ) -> None:
        """Lines of the access log (``shared.access_log``), in this transaction."""
        await access_log.record(self.conn, actor, action, subject_type, subject_ids, outcome=outcome)

    async def record_erasure(self, erased: CaregiverErased) -> None:
        """The tombstone of an erasure (``shared.tombstones``): first, before anything is deleted."""
        await record_tombstone(self.conn, erased.caregiver_pseudonym, erased.signal_ids, erased.case_ids)

    async def forget_retained(self, erased: CaregiverErased, *, whole_subject: bool = False) -> None:
        """Drop the outbox's retained copies the erasure covers (``shared.outbox.forget_erased``)."""
        await forget_erased(self.conn, erased, whole_subject=whole_subject)

    @classmethod
    @asynccontextmanager
    async def begin(cls, pool: asyncpg.Pool) -> AsyncIterator[Self]:
        """A unit of work of its own (for routes and jobs): committed when the block ends,
        rolled back when it raises."""
        async with pool.acquire() as conn, conn.transaction():
            yield cls(conn)
