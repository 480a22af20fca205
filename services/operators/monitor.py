"""The console's view of the services: a loop reads every service's ``/healthz`` and
``/metrics`` every few seconds and keeps a window of readings for the charts, and the dead
letters are asked of each service's internal operations endpoints with the deployment's
internal token. The console never reads another service's database."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

import httpx

from services.operators.config import OperatorsSettings
from services.operators.domain import Reading, parse_metrics
from shared.internal import internal_headers
from shared.worker import Periodic


class ServiceUnavailable(Exception):
    """A service did not answer (or refused) an operations call."""


class Monitor:
    def __init__(self, settings: OperatorsSettings) -> None:
        self.services = dict(settings.services)
        self.history: deque[dict[str, Reading]] = deque(maxlen=settings.history_samples)
        self._timeout = settings.scrape_timeout_seconds
        self._headers = internal_headers(settings.internal_token)
        self._client: httpx.AsyncClient | None = None
        # Ten requests every few seconds: httpx's line per request would drown the log.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self._loop = Periodic("monitor", settings.poll_seconds, self.tick)
        self.heartbeat = self._loop.heartbeat

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        return self._client

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        if self._client is not None:
            await self._client.aclose()

    async def tick(self) -> None:
        readings = await asyncio.gather(*(self._read(name, url) for name, url in self.services.items()))
        self.history.append({r.service: r for r in readings})

    async def _read(self, name: str, url: str) -> Reading:
        try:
            health, metrics = await asyncio.gather(self.client.get(f"{url}/healthz"), self.client.get(f"{url}/metrics"))
            body = health.json()
            return Reading(
                service=name,
                at=time.time(),
                reachable=True,
                ready=health.status_code == 200,
                health=body,
                samples=parse_metrics(metrics.text),
            )
        except (httpx.HTTPError, ValueError) as exc:
            return Reading(
                service=name, at=time.time(), reachable=False, ready=False, error=f"{type(exc).__name__}: {exc}"[:300]
            )

    def latest(self) -> dict[str, Reading]:
        return dict(self.history[-1]) if self.history else {}

    def last_answered(self) -> dict[str, Reading]:
        """Each service's most recent reading that answered (its counters and gauges)."""
        found: dict[str, Reading] = {}
        for moment in self.history:
            found |= {s: r for s, r in moment.items() if r.reachable}
        return found

    def window(self, service: str, seconds: float) -> list[Reading]:
        """The service's readings of the last ``seconds`` (at least the latest one)."""
        readings = [m[service] for m in self.history if service in m]
        if not readings:
            return []
        since = readings[-1].at - seconds
        return [r for r in readings if r.at >= since] or readings[-1:]

    # --- dead letters, through each service's internal operations endpoints ---------------

    async def _call(self, method: str, service: str, path: str, **params: Any) -> Any:
        if service not in self.services:
            raise KeyError(service)
        try:
            response = await self.client.request(
                method,
                f"{self.services[service]}/internal/dead-letters{path}",
                headers=self._headers,
                params=params or None,
            )
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"{service}: {type(exc).__name__}") from exc
        if response.status_code in (404, 409):
            raise LookupError(response.json().get("detail", response.text))
        if response.status_code != 200:
            raise ServiceUnavailable(f"{service}: HTTP {response.status_code}")
        return response.json()

    async def dead_letters(self, include_resolved: bool = False) -> dict[str, list[dict[str, Any]] | str]:
        """Every service's dead letters, or why they could not be read."""

        async def one(service: str) -> list[dict[str, Any]] | str:
            try:
                params = {"include_resolved": "true"} if include_resolved else {}
                return (await self._call("GET", service, "", **params))["dead_letters"]
            except ServiceUnavailable as exc:
                return str(exc)

        results = await asyncio.gather(*(one(s) for s in self.services))
        return dict(zip(self.services, results, strict=True))

    async def dead_letter(self, service: str, dead_letter_id: int) -> dict[str, Any]:
        return await self._call("GET", service, f"/{dead_letter_id}")

    async def replay(self, service: str, dead_letter_id: int) -> list[int]:
        return (await self._call("POST", service, f"/{dead_letter_id}/replay"))["replayed"]
