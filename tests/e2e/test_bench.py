"""`make bench`'s measurement on the test stack: signals posted through its own client,
followed to ``notified`` in the signals database, and costed in CPU per process."""

import asyncio
import json
import uuid

from deploy import bench
from deploy.stack import Stack
from tests.e2e.conftest import GP_KEY, make_signal


async def test_the_benchmark_posts_follows_and_costs_its_signals(stack: Stack) -> None:
    signals = stack.services["signals"]
    before = bench.cpu_seconds(stack)
    result = await bench.run(signals.url, GP_KEY, 12, 12, 120, database_url=signals.env["SIGNALS_DATABASE_URL"])
    cost = bench.cost_per_signal(before, bench.cpu_seconds(stack), result["accepted"])
    assert result["accepted"] == 12 and result["post_failures"] == 0, result
    assert result["notified"] == 12 and result["not_notified_within_timeout"] == 0, result
    latency = result["latency_s"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"] < 120
    assert len(result["p50_latency_s_by_tenth"]) == 10
    assert {"signals", "screening", "matching", "notify"} <= set(cost) and cost["signals"] > 0
    assert cost["total"] == round(sum(v for k, v in cost.items() if k != "total"), 1)

    alone = await bench.run(signals.url, GP_KEY, 5, 50, 60, ingest_only=True)
    assert alone["mode"] == "ingest-only" and alone["accepted"] == 5 and alone["ingest_throughput_per_s"] > 0


async def test_the_benchmark_client_reconnects_when_the_server_closed_an_idle_connection(stack: Stack) -> None:
    poster = bench.Poster(stack.services["signals"].url, connections=1)
    auth = {"Authorization": f"Bearer {GP_KEY}"}
    try:
        for attempt in range(2):
            body = json.dumps(make_signal()).encode()
            status, _, content = await poster.post("/v1/signals", body, {**auth, "Idempotency-Key": uuid.uuid4().hex})
            assert status == 202, content
            if not attempt:
                await asyncio.sleep(6)  # past uvicorn's keep-alive (5 s): the server closes it
    finally:
        await poster.close()
