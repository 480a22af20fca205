"""In-memory fakes for the unit tests of the services' use cases: a unit of work that keeps the
events it would publish. Services' fakes subclass it, add in-memory repositories and take the
topic and producer of the service's own unit of work (``emit`` is the real one's)."""

from __future__ import annotations

from typing import Any

from shared.contracts import CaregiverErased, Envelope
from shared.uow import UnitOfWork


class FakeUnitOfWork(UnitOfWork):
    """Stands in for shared.uow.UnitOfWork: no connection, the published events in a list."""

    def __init__(self) -> None:
        self.published: list[tuple[str, Envelope[Any]]] = []
        self.tombstones: list[CaregiverErased] = []
        self.forgotten: list[CaregiverErased] = []

    async def publish(self, topic: str, event: Envelope[Any]) -> None:
        self.published.append((topic, event))

    async def record_erasure(self, erased: CaregiverErased) -> None:
        self.tombstones.append(erased)

    async def forget_retained(self, erased: CaregiverErased, *, whole_subject: bool = False) -> None:
        self.forgotten.append(erased)

    def events(self, topic: str | None = None) -> list[Envelope[Any]]:
        """What was published, optionally only to ``topic``, in order."""
        return [event for to, event in self.published if topic is None or to == topic]
