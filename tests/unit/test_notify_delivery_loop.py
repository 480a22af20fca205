"""Circuit breakers with a clock the test moves, and the delivery loop's orchestration with a
fake pool: it survives a database that is away, keeps its heartbeat and goes on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Generator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from services.notify.breakers import Breakers, State
from services.notify.config import NotifySettings
from services.notify.context import NotifyContext
from services.notify.delivery import DeliveryWorker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def breakers(clock: Clock) -> Breakers:
    return Breakers(failures=3, cooloff_seconds=10, max_cooloff_seconds=25, clock=clock)


def test_consecutive_channel_failures_open_the_breaker_and_a_success_resets_the_count() -> None:
    b = breakers(Clock())
    assert b.failed("email") is State.CLOSED and b.failed("email") is State.CLOSED
    b.succeeded("email")
    assert b.failed("email") is State.CLOSED and b.failed("email") is State.CLOSED, "the count started over"
    assert b.failed("email") is State.OPEN
    assert b.blocked() == ["email"] and b.probes_wanted() == []
    assert b.failed("webhook:his.example.nl") is State.CLOSED, "each key has its own breaker"


def test_after_the_cool_off_one_probe_goes_through_and_its_outcome_decides() -> None:
    clock = Clock()
    b = breakers(clock)
    for _ in range(3):
        b.failed("sms")
    clock.now = 9.9
    assert b.state("sms") is State.OPEN
    clock.now = 10
    assert b.state("sms") is State.HALF_OPEN and b.blocked() == ["sms"], "half-open: not claimed in bulk"
    assert b.probes_wanted() == ["sms"]
    b.probing("sms")
    assert b.probes_wanted() == [], "one probe at a time"

    assert b.failed("sms") is State.OPEN, "a failed probe opens it again"
    clock.now = 29.9
    assert b.state("sms") is State.OPEN, "for twice as long"
    clock.now = 30
    b.probing("sms")
    b.failed("sms")
    clock.now = 30 + 24.9
    assert b.state("sms") is State.OPEN
    clock.now = 30 + 25
    assert b.state("sms") is State.HALF_OPEN, "the cool-off is capped"
    b.probing("sms")
    b.succeeded("sms")
    assert b.state("sms") is State.CLOSED and b.blocked() == [] and b.states() == {"sms": State.CLOSED}


def test_a_probe_that_told_nothing_lets_another_one_go() -> None:
    clock = Clock()
    b = breakers(clock)
    for _ in range(3):
        b.failed("email")
    clock.now = 10
    b.probing("email")
    b.released("email")  # cancelled, or its message was erased
    assert b.probes_wanted() == ["email"]


class Conn:
    async def fetch(self, *args: Any) -> list[Any]:
        return []

    async def fetchval(self, *args: Any) -> float:
        return 0.0

    # What the loop's LISTEN connection needs (shared.listener).
    async def add_listener(self, *args: Any) -> None:
        pass

    async def remove_listener(self, *args: Any) -> None:
        pass

    def add_termination_listener(self, *args: Any) -> None:
        pass

    def is_closed(self) -> bool:
        return False

    def transaction(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()


class FlakyPool:
    """A pool whose database is away for the first few acquisitions (as a block, and as the
    plain acquire the LISTEN connection uses)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.claims = 0

    def _connect(self) -> Conn:
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("database away")
        return Conn()

    def acquire(self) -> _Acquire:
        return _Acquire(self)

    async def release(self, conn: Conn) -> None:
        pass


class _Acquire:
    def __init__(self, pool: FlakyPool) -> None:
        self.pool = pool

    def __await__(self) -> Generator[Any, None, Conn]:
        return self._conn().__await__()

    async def _conn(self) -> Conn:
        return self.pool._connect()

    async def __aenter__(self) -> Conn:
        conn = self.pool._connect()
        self.pool.claims += 1
        return conn

    async def __aexit__(self, *exc: object) -> None:
        pass


async def test_the_loop_survives_a_database_outage_and_keeps_beating() -> None:
    settings = NotifySettings(delivery_poll_seconds=0.005)
    pool = FlakyPool(failures=3)
    ctx = replace(NotifyContext.create(settings), runtime=SimpleNamespace(pool=pool))
    worker = DeliveryWorker(ctx, {})
    started = time.monotonic()
    await worker.start()
    try:
        deadline = time.monotonic() + 10
        while pool.claims < 3:
            assert time.monotonic() < deadline, "the loop did not resume after the outage"
            await asyncio.sleep(0.01)
        task = worker.heartbeat.task
        assert task is not None and not task.done(), "an error never ends the loop"
        assert worker.heartbeat.alive() and worker.heartbeat.age() < time.monotonic() - started, (
            "it beat after the outage"
        )
    finally:
        await worker.stop()
    assert task.done()
