"""The operator console's arithmetic over the services' readings (services/operators/domain.py)."""

from __future__ import annotations

import pytest

from services.operators import domain
from services.operators.domain import Reading


def metrics_text(processed: float, lag: float, buckets: dict[str, float], posted: float = 0) -> str:
    lines = [
        "# TYPE sts_messages_handled counter",
        f'sts_messages_handled_total{{topic="t",outcome="processed"}} {processed}',
        'sts_messages_handled_total{topic="t",outcome="duplicate"} 1',
        "# TYPE sts_consumer_lag gauge",
        f'sts_consumer_lag{{topic="t",partition="0"}} {lag}',
        'sts_consumer_lag{topic="t",partition="1"} 1',
        "# TYPE sts_handler_seconds histogram",
        *(f'sts_handler_seconds_bucket{{topic="t",le="{le}"}} {n}' for le, n in buckets.items()),
        "# TYPE sts_http_requests counter",
        f'sts_http_requests_total{{method="POST",route="/v1/signals",status="202"}} {posted}',
        'sts_http_requests_total{method="POST",route="/v1/signals",status="503"} 3',
    ]
    return "\n".join(lines) + "\n"


def reading(
    at: float,
    processed: float,
    lag: float = 4,
    buckets: dict[str, float] | None = None,
    posted: float = 0,
    service: str = "signals",
    ready: bool = True,
) -> Reading:
    text = metrics_text(processed, lag, buckets or {"0.1": 0, "1.0": 0, "+Inf": 0}, posted)
    return Reading(
        service=service,
        at=at,
        reachable=True,
        ready=ready,
        samples=domain.parse_metrics(text),
        health={
            "database": "up",
            "broker": "up",
            "consumers": {"t": {"lanes": 3, "lanes_alive": 2, "waiting_on_dependency": [{}]}},
            "loops": {"outbox-relay": {"alive": True}, "delivery": {"alive": False}},
        },
    )


def gone(at: float, service: str = "signals") -> Reading:
    return Reading(service=service, at=at, reachable=False, ready=False, error="ReadTimeout: ")


def test_counter_rates_and_a_restart_that_reset_them() -> None:
    assert domain.rate(reading(0, 10), reading(10, 60), "sts_messages_handled_total", outcome="processed") == 5
    assert domain.rate(reading(0, 60), reading(10, 5), "sts_messages_handled_total", outcome="processed") == 0
    assert domain.rate(None, reading(10, 5), "sts_messages_handled_total") == 0


def test_histogram_quantile_interpolates_within_the_bucket_as_prometheus_does() -> None:
    old = reading(0, 0, buckets={"0.1": 0, "1.0": 0, "+Inf": 0})
    new = reading(10, 0, buckets={"0.1": 50, "1.0": 100, "+Inf": 100})
    assert domain.histogram_quantile(0.5, old, new, "sts_handler_seconds") == pytest.approx(0.1)
    assert domain.histogram_quantile(0.75, old, new, "sts_handler_seconds") == pytest.approx(0.55)
    assert domain.histogram_quantile(0.5, new, new, "sts_handler_seconds") is None  # nothing observed


def test_service_panel_skips_readings_that_did_not_answer() -> None:
    window = [reading(0, 0), gone(2), reading(4, 20, lag=7), gone(6)]
    panel = domain.service_panel(window)
    assert not panel.reachable and not panel.ready and panel.error == "ReadTimeout: "
    assert panel.processed_per_s == 5  # from the first to the last reading that answered
    assert panel.lag == 8 and panel.lag_by_partition == [("t", "0", 7), ("t", "1", 1)]
    healthy = domain.service_panel([reading(0, 0), reading(4, 20)])
    assert healthy.ready and healthy.lanes == "2/3" and healthy.waiting == 1 and healthy.loops_down == ["delivery"]


def test_chart_series_rates_from_the_last_reading_that_answered() -> None:
    history = [{"signals": reading(0, 0, posted=0)}, {"signals": gone(2)}, {"signals": reading(4, 8, posted=4)}]
    data = domain.series(history, ["signals"])
    assert data["time"] == [0, 2, 4]
    assert data["throughput"]["signals"] == [None, None, 2.0]
    assert data["ingest"] == [None, None, 1.0]  # only the 202s count as accepted
    assert data["lag"]["signals"] == [5, None, 5]


def test_pipeline_panel_reads_the_funnel_and_domain_gauges() -> None:
    signals = Reading(
        "signals",
        0,
        True,
        True,
        samples=domain.parse_metrics(
            "# TYPE sts_pipeline_signals_last_hour gauge\n"
            'sts_pipeline_signals_last_hour{stage="received"} 10\n'
            'sts_pipeline_signals_last_hour{stage="notified"} 7\n'
            "# TYPE sts_pipeline_ingest_to_notified_seconds gauge\n"
            'sts_pipeline_ingest_to_notified_seconds{quantile="0.95"} 2.5\n'
            'sts_pipeline_ingest_to_notified_seconds{quantile="0.5"} 1.5\n'
        ),
    )
    matching = Reading(
        "matching",
        0,
        True,
        True,
        samples=domain.parse_metrics(
            "# TYPE sts_no_match_reasons counter\n"
            'sts_no_match_reasons_total{reason="no capacity"} 2\n'
            "# TYPE sts_services_at_capacity gauge\nsts_services_at_capacity 3\n"
        ),
    )
    panel = domain.pipeline_panel({"signals": signals, "matching": matching})
    assert panel.funnel == [("received", 10), ("screened", 0), ("escalated", 0), ("matched", 0), ("notified", 7)]
    assert panel.latency == [("p50", 1.5), ("p95", 2.5)]
    assert panel.no_match_reasons == {"no capacity": 2} and panel.services_at_capacity == 3
    assert panel.risk_levels == {} and panel.referrals_past_deadline == 0  # screening, notify not read yet


def test_tokens_are_stored_as_digests() -> None:
    token = domain.new_token()
    assert len(token) >= 40 and domain.hash_token(token) != token and len(domain.hash_token(token)) == 64


def test_a_reading_keeps_only_what_the_console_reads() -> None:
    # Kept for minutes per service: no Python runtime samples, no _created timestamps, and a
    # histogram's buckets summed per bound however many routes it was observed on.
    text = "\n".join(
        [
            "# TYPE python_gc_objects_collected_total counter",
            'python_gc_objects_collected_total{generation="0"} 12.0',
            "# TYPE sts_http_request_seconds histogram",
            'sts_http_request_seconds_bucket{le="0.1",method="GET",route="/a"} 2.0',
            'sts_http_request_seconds_bucket{le="0.1",method="POST",route="/b"} 3.0',
            'sts_http_request_seconds_bucket{le="+Inf",method="GET",route="/a"} 4.0',
            'sts_http_request_seconds_bucket{le="+Inf",method="POST",route="/b"} 5.0',
            'sts_http_request_seconds_count{method="GET",route="/a"} 4.0',
            'sts_http_request_seconds_created{method="GET",route="/a"} 1.7e9',
            "",
        ]
    )
    samples = domain.parse_metrics(text)
    assert set(samples) == {"sts_http_request_seconds_bucket", "sts_http_request_seconds_count"}
    assert samples["sts_http_request_seconds_bucket"] == {(("le", "0.1"),): 5.0, (("le", "+Inf"),): 9.0}
