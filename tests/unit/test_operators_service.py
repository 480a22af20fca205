"""The operator console's sign-in use cases against an in-memory unit of work: a link works
once (unless reusable), its session names the operator, signing out ends it."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from services.operators import service
from services.operators.config import OperatorsSettings
from tests.fakes import FakeUnitOfWork

SETTINGS = OperatorsSettings(public_url="https://console.example")


class FakeOperators:
    def __init__(self) -> None:
        self.names: dict[UUID, str] = {}
        self.links: dict[str, dict[str, object]] = {}
        self.sessions: dict[str, UUID] = {}

    async def add_operator(self, name: str) -> UUID:
        operator_id = next((i for i, n in self.names.items() if n == name), uuid4())
        self.names[operator_id] = name
        return operator_id

    async def add_link(self, operator_id: UUID, token_hash: str, expires_at: datetime, reusable: bool) -> None:
        self.links[token_hash] = {"operator": operator_id, "expires": expires_at, "reusable": reusable, "used": False}

    async def use_link(self, token_hash: str, now: datetime) -> UUID | None:
        link = self.links.get(token_hash)
        if link is None or link["expires"] <= now or (link["used"] and not link["reusable"]):  # type: ignore[operator]
            return None
        link["used"] = True
        return link["operator"]  # type: ignore[return-value]

    async def add_session(self, operator_id: UUID, token_hash: str, expires_at: datetime) -> None:
        self.sessions[token_hash] = operator_id

    async def operator_for_session(self, token_hash: str, now: datetime) -> str | None:
        operator_id = self.sessions.get(token_hash)
        return None if operator_id is None else self.names[operator_id]

    async def end_session(self, token_hash: str) -> None:
        self.sessions.pop(token_hash, None)


class FakeOperatorsUnitOfWork(FakeUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.operators = FakeOperators()


def _token(link: str) -> str:
    return link.split("token=", 1)[1]


async def test_a_link_signs_in_once_and_the_session_names_the_operator_until_sign_out() -> None:
    uow = FakeOperatorsUnitOfWork()
    link = await service.issue_operator(uow, SETTINGS, "Sam")
    assert link.startswith("https://console.example/sign-in?token=")
    session = await service.sign_in(uow, SETTINGS, _token(link))
    assert session is not None and await service.operator_for(uow, session) == "Sam"
    assert await service.sign_in(uow, SETTINGS, _token(link)) is None, "a link works once"
    await service.sign_out(uow, session)
    assert await service.operator_for(uow, session) is None


async def test_a_reusable_link_signs_in_again_and_an_unknown_one_never() -> None:
    uow = FakeOperatorsUnitOfWork()
    link = await service.issue_operator(uow, SETTINGS, "Kiosk", reusable=True)
    assert await service.sign_in(uow, SETTINGS, _token(link)) is not None
    assert await service.sign_in(uow, SETTINGS, _token(link)) is not None
    assert await service.sign_in(uow, SETTINGS, "not-a-token-we-gave") is None
