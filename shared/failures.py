"""Which failures are the infrastructure's (a dependency is away or overloaded) and which
are the event's or the code's.

The distinction decides what happens next: an infrastructure failure is waited out (a
consumer holds its record, an API answers 503 with Retry-After), never dead-lettered and
never a 500; any other failure is the event's, retried for a while and then dead-lettered."""

from __future__ import annotations

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, NodeNotReadyError

# The server is gone, restarting, refusing, overloaded, or failing over; or the transaction
# lost a race that a retry wins (serialization failure, deadlock).
_POSTGRES = (
    asyncpg.PostgresConnectionError,  # incl. ConnectionDoesNotExistError, CannotConnectNow via 08*
    asyncpg.exceptions.OperatorInterventionError,  # admin/crash shutdown, cannot connect now, cancelled
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full, out of memory
    asyncpg.exceptions.TransactionRollbackError,  # serialization failure, deadlock detected
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # a replica during fail-over
)
_KAFKA = (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError)


def is_infrastructure_failure(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from) means a dependency is away."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_infrastructure(current):
            return True
        current = current.__cause__
    return False


def _is_infrastructure(exc: BaseException) -> bool:
    if isinstance(exc, (*_POSTGRES, *_KAFKA)):
        return True
    if isinstance(exc, asyncpg.InterfaceError):
        # "connection is closed", "pool is closing": the connection died under us. Other
        # interface errors ("another operation is in progress") are bugs, not outages.
        return "closed" in str(exc) or "closing" in str(exc)
    if isinstance(exc, KafkaError):
        return bool(getattr(exc, "retriable", False))
    # OSError covers refused/reset connections (ConnectionError) and, since 3.11,
    # TimeoutError = asyncio.TimeoutError: pool acquire timeouts and command timeouts.
    return isinstance(exc, OSError)
