"""Use cases of the operator console: issuing an operator's sign-in link, signing in and out,
and what the console shows and does (panels from the monitor, dead letters replayed
through the owning service)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.operators import domain
from services.operators.config import OperatorsSettings
from services.operators.monitor import Monitor
from services.operators.repository import OperatorsRepository
from shared.uow import Repository, UnitOfWork

# Rates and latency percentiles are taken over this window of readings.
RATE_WINDOW_SECONDS = 30.0


def _now() -> datetime:
    return datetime.now(UTC)


class OperatorsUnitOfWork(UnitOfWork):
    """The operators' table of sign-in links and sessions, in one transaction."""

    operators = Repository(OperatorsRepository)


async def issue_operator(
    uow: OperatorsUnitOfWork,
    settings: OperatorsSettings,
    name: str,
    *,
    token: str | None = None,
    reusable: bool = False,
    valid_minutes: float | None = None,
) -> str:
    """Create (or re-enable) the operator and return a sign-in link; one use unless reusable."""
    token = token or domain.new_token()
    operator_id = await uow.operators.add_operator(name)
    await uow.operators.add_link(
        operator_id,
        domain.hash_token(token),
        _now() + timedelta(minutes=valid_minutes or settings.sign_in_link_minutes),
        reusable,
    )
    return f"{settings.public_url.rstrip('/')}/sign-in?token={token}"


async def sign_in(uow: OperatorsUnitOfWork, settings: OperatorsSettings, link_token: str) -> str | None:
    """Exchange a sign-in link's token for a new session token; None if the link is not valid."""
    session = domain.new_token()
    operator_id = await uow.operators.use_link(domain.hash_token(link_token), _now())
    if operator_id is None:
        return None
    await uow.operators.add_session(
        operator_id, domain.hash_token(session), _now() + timedelta(hours=settings.session_hours)
    )
    return session


async def operator_for(uow: OperatorsUnitOfWork, session_token: str) -> str | None:
    return await uow.operators.operator_for_session(domain.hash_token(session_token), _now())


async def sign_out(uow: OperatorsUnitOfWork, session_token: str) -> None:
    await uow.operators.end_session(domain.hash_token(session_token))


@dataclass(frozen=True)
class Overview:
    services: list[domain.ServicePanel]
    pipeline: domain.PipelinePanel
    dead_letters: dict[str, list[dict[str, Any]] | str]
    updated_at: datetime | None


async def overview(monitor: Monitor) -> Overview:
    latest = monitor.latest()
    panels = [domain.service_panel(w) for s in monitor.services if (w := monitor.window(s, RATE_WINDOW_SECONDS))]
    updated = max((r.at for r in latest.values()), default=None)
    return Overview(
        services=panels,
        pipeline=domain.pipeline_panel(monitor.last_answered()),
        dead_letters=await monitor.dead_letters(),
        updated_at=datetime.fromtimestamp(updated, UTC) if updated else None,
    )


def chart_series(monitor: Monitor) -> dict[str, Any]:
    return domain.series(list(monitor.history), list(monitor.services))


async def inspect_dead_letter(monitor: Monitor, service: str, dead_letter_id: int) -> dict[str, Any]:
    return await monitor.dead_letter(service, dead_letter_id)


async def replay_dead_letter(monitor: Monitor, service: str, dead_letter_id: int) -> list[int]:
    return await monitor.replay(service, dead_letter_id)
