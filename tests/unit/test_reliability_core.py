"""Pure pieces of the reliability core: failure classification, heartbeats, the ids a
tombstone matches, the CLI's table."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, RecordTooLargeError

from shared.cli import TOOL
from shared.commandline import table
from shared.failures import is_infrastructure_failure
from shared.tombstones import erased_ids_named
from shared.worker import Heartbeat, Periodic

exc = asyncpg.exceptions


@pytest.mark.parametrize(
    "error",
    [
        exc.ConnectionDoesNotExistError("gone"),
        exc.CannotConnectNowError("starting"),
        exc.TooManyConnectionsError("full"),
        exc.SerializationError("race"),
        exc.DeadlockDetectedError("lock"),
        exc.AdminShutdownError("shutdown"),
        exc.QueryCanceledError("cancelled"),
        asyncpg.InterfaceError("cannot call Transaction.__aexit__(): the underlying connection is closed"),
        TimeoutError(),
        ConnectionRefusedError(111, "refused"),
        ConnectionResetError(),
        KafkaConnectionError(),
        KafkaTimeoutError(),
        NodeNotReadyError(),
    ],
)
def test_outages_are_infrastructure_failures(error: BaseException) -> None:
    assert is_infrastructure_failure(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad"),
        KeyError("x"),
        exc.UniqueViolationError("dup"),
        exc.UndefinedColumnError("col"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        RecordTooLargeError(),
    ],
)
def test_other_failures_are_not(error: BaseException) -> None:
    assert not is_infrastructure_failure(error)


def test_a_failure_raised_from_an_outage_is_one() -> None:
    try:
        try:
            raise ConnectionResetError()
        except ConnectionResetError as cause:
            raise RuntimeError("could not store") from cause
    except RuntimeError as error:
        assert is_infrastructure_failure(error)


async def test_a_heartbeat_goes_stale_and_a_dead_task_is_not_alive() -> None:
    beat = Heartbeat("loop", stale_after=0.05)
    assert beat.alive()
    await asyncio.sleep(0.1)
    assert not beat.alive()
    beat.beat()
    beat.task = asyncio.create_task(asyncio.sleep(0))
    await beat.task
    assert not beat.alive()


async def test_a_periodic_loop_beats_while_it_waits_for_its_next_round() -> None:
    rounds: list[int] = []

    async def one_round() -> None:
        rounds.append(1)

    periodic = Periodic("job", 0.02, one_round, stale_after=0.2)
    await periodic.start()
    await asyncio.sleep(0.5)
    assert periodic.heartbeat.alive() and len(rounds) > 3
    await periodic.stop()
    assert not periodic.heartbeat.alive()  # its task ended


def test_the_ids_an_event_names() -> None:
    signal, case = uuid.uuid4(), uuid.uuid4()
    assert erased_ids_named({"signal_id": str(signal), "case_id": case, "n": 1}) == [signal, case]
    assert erased_ids_named({"last_signal_id": str(signal)}) == [signal]
    assert erased_ids_named({"signal_id": "not-a-uuid", "other": 1}) == []


def test_table_aligns_and_cuts() -> None:
    out = table([{"id": 1, "error": "x" * 100}, {"id": 22, "error": None}], ["id", "error"])
    lines = out.splitlines()
    assert lines[0].startswith("id  error") and lines[1].endswith("...") and lines[2] == "22  -"


def test_the_cli_names_its_commands() -> None:
    args = TOOL.parser.parse_args(["--service", "notify", "dead-letters", "replay", "--all", "--topic", "t"])
    assert (args.service, args.handler.__name__, args.all, args.topic, args.id) == (
        "notify",
        "_replay",
        True,
        "t",
        None,
    )
    with pytest.raises(SystemExit):
        TOOL.parser.parse_args(["--service", "nowhere", "dead-letters", "list"])


def test_an_outage_is_a_503_with_retry_after_and_a_bug_stays_a_500() -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from shared.http import install_unavailable_handler

    app = FastAPI()
    install_unavailable_handler(app)

    @app.get("/outage")
    async def outage() -> None:
        raise ConnectionRefusedError(111, "Connect call failed")

    @app.get("/bug")
    async def bug() -> None:
        raise exc.UniqueViolationError("duplicate key")

    client = TestClient(app, raise_server_exceptions=False)
    answer = client.get("/outage")
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert answer.json()["error"] == "service_unavailable"
    assert client.get("/bug").status_code == 500


async def test_consumer_health_reports_a_dead_lane() -> None:
    from shared.consumer import ConsumerSettings, EventConsumer
    from shared.metrics import Metrics

    class Subscriber:  # what the consumer reads of a FastStream subscriber: its lane's task
        def __init__(self, tasks: list[asyncio.Task[None]]) -> None:
            self.tasks = tasks

    running = asyncio.create_task(asyncio.sleep(10))
    ended = asyncio.create_task(asyncio.sleep(0))
    await ended
    consumer = EventConsumer(None, lambda: None, Metrics("t"), ConsumerSettings(group_id="g"))
    consumer._subscribers = {"a.v1": Subscriber([running]), "b.v1": Subscriber([ended])}
    ok, report = consumer.health()
    assert not ok
    assert report["a.v1"]["lanes_alive"] == 1 and report["b.v1"]["lanes_alive"] == 0
    consumer._subscribers.pop("b.v1")
    assert consumer.health()[0]
    running.cancel()


def test_a_route_for_an_event_type_without_a_payload_model_is_refused_at_start_up() -> None:
    from shared.consumer import ConsumerSettings, EventConsumer
    from shared.metrics import Metrics

    async def handle(conn: object, event: object) -> None: ...

    consumer = EventConsumer(None, lambda: None, Metrics("t"), ConsumerSettings(group_id="g"))
    with pytest.raises(ValueError, match=r"no payload model in the contracts for signal\.recieved"):
        consumer.subscribe({"signals.received.v1": {"signal.recieved": handle}})  # a typo: never handled
    assert consumer.topics == []
