"""`make bench`'s measurement on the test stack: signals posted through its own client,
followed to ``notified`` in the signals database, and costed in CPU per process."""

from deploy import bench
from deploy.stack import Stack
from tests.e2e.conftest import GP_KEY


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
