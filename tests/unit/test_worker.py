"""The one background loop (shared.worker.Periodic): a round that left work runs again at once,
``wake()`` starts a round early, a failing round is retried with backoff and never ends the loop."""

from __future__ import annotations

import asyncio
import itertools

from shared.worker import Periodic


async def _until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_a_round_that_left_work_runs_again_at_once() -> None:
    rounds: list[int] = []

    async def job() -> object:
        rounds.append(1)
        return Periodic.AGAIN if len(rounds) < 5 else None

    loop = Periodic("again", 3600, job)
    await loop.start()
    try:
        await _until(lambda: len(rounds) == 5)  # five rounds without waiting the hour
        await asyncio.sleep(0.05)
        assert len(rounds) == 5
    finally:
        await loop.stop()


async def test_wake_starts_the_next_round_early() -> None:
    rounds: list[int] = []

    async def job() -> None:
        rounds.append(1)

    loop = Periodic("wake", 3600, job)
    await loop.start()
    try:
        await _until(lambda: len(rounds) == 1)
        loop.wake()
        await _until(lambda: len(rounds) == 2)
    finally:
        await loop.stop()


async def test_failures_back_off_are_counted_and_never_end_the_loop() -> None:
    errors: list[Exception] = []
    calls: list[float] = []

    async def job() -> None:
        calls.append(asyncio.get_running_loop().time())
        if len(calls) <= 3:
            raise ConnectionRefusedError("database away")

    loop = Periodic("flaky", 3600, job, retry_seconds=0.02, max_retry_seconds=1, on_error=errors.append)
    await loop.start()
    try:
        await _until(lambda: len(calls) == 4)
        assert [type(e) for e in errors] == [ConnectionRefusedError] * 3
        gaps = [b - a for a, b in itertools.pairwise(calls)]
        assert gaps[2] > gaps[0]  # doubled per failure in a row (with jitter of at most half)
        assert loop.heartbeat.alive()
    finally:
        await loop.stop()
    assert loop.heartbeat.task is not None and loop.heartbeat.task.done()
