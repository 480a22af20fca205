"""Circuit breakers for delivery channels: pure state, no I/O, time from an injected clock.

A breaker guards one key (a channel, or ``webhook:<host>``). Consecutive failures that say
the channel itself is down or misconfigured open it; while open, the delivery worker claims
none of its messages, so a relay that is down does not burn through their attempts. After a
cool-off it is half-open: one message goes through as a probe; a success closes the breaker,
a failure opens it again for twice as long (capped). A failure that belongs to one message
(a refused address) says the channel works and counts as a success here."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum


class State(IntEnum):
    """Also the value of the breaker-state metric."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass
class _Breaker:
    failures: int = 0
    state: State = State.CLOSED
    cooloff: float = 0.0
    opened_at: float = 0.0
    probing: bool = False


class Breakers:
    def __init__(
        self,
        failures: int,
        cooloff_seconds: float,
        max_cooloff_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = max(1, failures)
        self.base_cooloff = cooloff_seconds
        self.max_cooloff = max(cooloff_seconds, max_cooloff_seconds)
        self.clock = clock
        self._breakers: dict[str, _Breaker] = {}

    def _refresh(self, breaker: _Breaker) -> None:
        if breaker.state is State.OPEN and self.clock() - breaker.opened_at >= breaker.cooloff:
            breaker.state = State.HALF_OPEN

    def state(self, key: str) -> State:
        breaker = self._breakers.get(key)
        if breaker is None:
            return State.CLOSED
        self._refresh(breaker)
        return breaker.state

    def states(self) -> dict[str, State]:
        """Every key that ever failed, with its state (for metrics and the health endpoint)."""
        return {key: self.state(key) for key in self._breakers}

    def blocked(self) -> list[str]:
        """Keys whose messages must not be claimed in bulk: open, or half-open (one probe at a time)."""
        return [key for key, state in self.states().items() if state is not State.CLOSED]

    def probes_wanted(self) -> list[str]:
        """Half-open keys without a probe in flight: one message of each may be claimed."""
        return [
            key for key, state in self.states().items() if state is State.HALF_OPEN and not self._breakers[key].probing
        ]

    def probing(self, key: str) -> None:
        self._breakers[key].probing = True

    def succeeded(self, key: str) -> None:
        if key in self._breakers:
            self._breakers[key] = _Breaker()

    def failed(self, key: str) -> State:
        """A failure of the channel itself; returns the state it leaves the breaker in."""
        breaker = self._breakers.setdefault(key, _Breaker())
        self._refresh(breaker)
        breaker.failures += 1
        if breaker.state is State.HALF_OPEN:
            self._open(breaker, min(self.max_cooloff, max(self.base_cooloff, breaker.cooloff * 2)))
        elif breaker.state is State.CLOSED and breaker.failures >= self.threshold:
            self._open(breaker, self.base_cooloff)
        return breaker.state

    def released(self, key: str) -> None:
        """A probe ended without telling anything (cancelled, or the row was erased)."""
        if key in self._breakers:
            self._breakers[key].probing = False

    def _open(self, breaker: _Breaker, cooloff: float) -> None:
        breaker.state, breaker.cooloff, breaker.opened_at, breaker.probing = State.OPEN, cooloff, self.clock(), False
