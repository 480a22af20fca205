"""What the console shows, computed from the services' own ``/healthz`` and ``/metrics``
readings (no I/O here): a reading per service and moment, and from a window of them the
panels — readiness, throughput, lag, backlogs, dead letters, HTTP, the pipeline funnel and
the domain figures — and the series the charts draw."""

from __future__ import annotations

import hashlib
import math
import secrets
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Tokens are stored as SHA-256 digests: a leaked table opens nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Reading:
    """One service at one moment: its health answer and its metric samples."""

    service: str
    at: float
    reachable: bool
    ready: bool
    health: Mapping[str, Any] = field(default_factory=dict)
    samples: Mapping[str, Mapping[Labels, float]] = field(default_factory=dict)
    error: str | None = None

    def total(self, name: str, **match: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``match``."""
        return sum(v for labels, v in self.samples.get(name, {}).items() if _matches(labels, match))

    def by(self, name: str, label: str, **match: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for labels, v in self.samples.get(name, {}).items():
            if _matches(labels, match):
                key = dict(labels).get(label, "")
                out[key] = out.get(key, 0.0) + v
        return out


def _matches(labels: Labels, match: Mapping[str, str]) -> bool:
    given = dict(labels)
    return all(given.get(k) == v for k, v in match.items())


# Every reading repeats the label sets of the one before: one shared copy of each keeps the
# window's memory to its values (for 300 readings of seven services 16 MB instead of 37.5 MB, tracemalloc).
_LABELS: dict[Labels, Labels] = {}


def _shared(labels: Labels) -> Labels:
    if len(_LABELS) > 100_000:  # a label explosion somewhere must not grow this without bound
        _LABELS.clear()
    return _LABELS.setdefault(labels, labels)


def parse_metrics(text: str) -> dict[str, dict[Labels, float]]:
    """Prometheus text exposition → {sample name: {labels: value}}, only what the console reads.

    The monitor keeps minutes of readings of every service, so a reading holds no more than
    the console uses: the project's own ``sts_`` samples, without the ``_created`` timestamps,
    and histogram buckets summed per bound (the console's quantiles are over all routes and
    topics). A histogram by route, method and bucket of every service would otherwise grow the
    history with every route a client tries."""
    samples: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith("sts_") or sample.name.endswith("_created"):
                continue
            series = samples.setdefault(sys.intern(sample.name), {})
            if sample.name.endswith("_bucket"):
                labels = _shared((("le", sample.labels["le"]),))
                series[labels] = series.get(labels, 0.0) + float(sample.value)
                continue
            series[_shared(tuple(sorted(sample.labels.items())))] = float(sample.value)
    return samples


def rate(old: Reading | None, new: Reading, name: str, **match: str) -> float:
    """Per-second increase of a counter between two readings (0 after a restart reset it)."""
    if old is None or not (old.reachable and new.reachable) or new.at <= old.at:
        return 0.0
    increase = new.total(name, **match) - old.total(name, **match)
    return max(increase, 0.0) / (new.at - old.at)


def histogram_quantile(q: float, old: Reading | None, new: Reading, name: str) -> float | None:
    """The q-quantile of what a histogram observed between two readings, interpolated within
    its bucket as Prometheus' ``histogram_quantile`` does; None when nothing was observed."""
    buckets: dict[float, float] = {}
    for labels, value in new.samples.get(f"{name}_bucket", {}).items():
        le = float(dict(labels)["le"])
        before = old.samples.get(f"{name}_bucket", {}).get(labels, 0.0) if old and old.reachable else 0.0
        buckets[le] = buckets.get(le, 0.0) + max(value - before, 0.0)
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if math.isinf(bound):
                return lower
            width = buckets[bound] - below
            return lower + (bound - lower) * ((rank - below) / width if width else 1.0)
        lower, below = bound, buckets[bound]
    return lower


@dataclass(frozen=True)
class ServicePanel:
    name: str
    reachable: bool
    ready: bool
    database: str
    broker: str
    lanes: str
    waiting: int
    loops_down: list[str]
    processed_per_s: float
    duplicate_per_s: float
    ignored_per_s: float
    dead_lettered_per_s: float
    handler_p50_ms: float | None
    handler_p95_ms: float | None
    lag: float
    lag_by_partition: list[tuple[str, str, float]]
    outbox_pending: float
    outbox_oldest_s: float
    dead_letters: float
    http_per_s: float
    http_errors_per_s: float
    http_p95_ms: float | None
    error: str | None


def service_panel(window: Sequence[Reading]) -> ServicePanel:
    """A service's panel from its readings over the window (oldest first, at least one)."""
    latest = window[-1]
    # Rates between the first and the last reading that answered (a missed one is skipped).
    answered = [r for r in window if r.reachable] or [latest]
    new, old = answered[-1], (answered[0] if len(answered) > 1 else None)
    health = latest.health
    consumers = health.get("consumers", {}) or {}
    lanes = sum(c.get("lanes", 0) for c in consumers.values())
    alive = sum(c.get("lanes_alive", 0) for c in consumers.values())
    waiting = sum(len(c.get("waiting_on_dependency", [])) for c in consumers.values())
    loops = health.get("loops", {}) or {}
    p50 = histogram_quantile(0.5, old, new, "sts_handler_seconds")
    p95 = histogram_quantile(0.95, old, new, "sts_handler_seconds")
    http_p95 = histogram_quantile(0.95, old, new, "sts_http_request_seconds")
    errors = sum(
        rate(old, new, "sts_http_requests_total", status=s)
        for s in {dict(labels).get("status", "") for labels in new.samples.get("sts_http_requests_total", {})}
        if s.startswith("5")
    )
    return ServicePanel(
        name=latest.service,
        reachable=latest.reachable,
        ready=latest.ready,
        database=str(health.get("database", "?")),
        broker=str(health.get("broker", "?")),
        lanes=f"{alive}/{lanes}" if lanes else "—",
        waiting=waiting,
        loops_down=sorted(name for name, loop in loops.items() if not loop.get("alive", False)),
        processed_per_s=rate(old, new, "sts_messages_handled_total", outcome="processed"),
        duplicate_per_s=rate(old, new, "sts_messages_handled_total", outcome="duplicate"),
        ignored_per_s=rate(old, new, "sts_messages_handled_total", outcome="ignored"),
        dead_lettered_per_s=rate(old, new, "sts_messages_handled_total", outcome="dead_lettered"),
        handler_p50_ms=None if p50 is None else p50 * 1000,
        handler_p95_ms=None if p95 is None else p95 * 1000,
        lag=new.total("sts_consumer_lag"),
        lag_by_partition=sorted(
            (dict(labels).get("topic", ""), dict(labels).get("partition", ""), v)
            for labels, v in new.samples.get("sts_consumer_lag", {}).items()
        ),
        outbox_pending=new.total("sts_outbox_pending"),
        outbox_oldest_s=new.total("sts_outbox_oldest_pending_age_seconds"),
        dead_letters=new.total("sts_dead_letters"),
        http_per_s=rate(old, new, "sts_http_requests_total"),
        http_errors_per_s=errors,
        http_p95_ms=None if http_p95 is None else http_p95 * 1000,
        error=latest.error,
    )


@dataclass(frozen=True)
class PipelinePanel:
    funnel: list[tuple[str, float]]
    latency: list[tuple[str, float]]
    risk_levels: dict[str, float]
    escalations: float
    match_outcomes: dict[str, float]
    no_match_reasons: dict[str, float]
    services_at_capacity: float
    unassured_services: float
    referrals_past_deadline: float
    crisis_escalations_overdue: float
    follow_ups: dict[str, float]
    notifications: dict[str, float]


FUNNEL = ("received", "screened", "escalated", "matched", "notified")


def pipeline_panel(latest: Mapping[str, Reading]) -> PipelinePanel:
    """The pipeline and the domain from each service's latest reading (absent ones count 0)."""
    empty = Reading(service="", at=0, reachable=False, ready=False)
    signals, screening, matching, notify = (
        latest.get(n, empty) for n in ("signals", "screening", "matching", "notify")
    )
    funnel = signals.by("sts_pipeline_signals_last_hour", "stage")
    latency = signals.by("sts_pipeline_ingest_to_notified_seconds", "quantile")
    return PipelinePanel(
        funnel=[(stage, funnel.get(stage, 0.0)) for stage in FUNNEL],
        latency=[(f"p{round(float(q) * 100)}", v) for q, v in sorted(latency.items(), key=lambda i: float(i[0]))],
        risk_levels=screening.by("sts_screenings_total", "risk_level"),
        escalations=screening.total("sts_escalations_total"),
        match_outcomes=matching.by("sts_match_outcomes_total", "outcome"),
        no_match_reasons=matching.by("sts_no_match_reasons_total", "reason"),
        services_at_capacity=matching.total("sts_services_at_capacity"),
        unassured_services=matching.total("sts_social_map_unassured_services"),
        referrals_past_deadline=notify.total("sts_referrals_past_deadline"),
        crisis_escalations_overdue=notify.total("sts_crisis_escalations_overdue"),
        follow_ups=notify.by("sts_follow_ups_total", "event"),
        notifications=notify.by("sts_notifications_total", "outcome"),
    )


def series(history: Iterable[Mapping[str, Reading]], services: Sequence[str]) -> dict[str, Any]:
    """Chart data (uPlot's column layout): time, then per service its processed events per
    second and its total consumer lag, and the ingest API's accepted signals per second."""
    times: list[float] = []
    throughput: dict[str, list[float | None]] = {s: [] for s in services}
    lag: dict[str, list[float | None]] = {s: [] for s in services}
    ingest: list[float | None] = []
    # Rates run from each service's last reading that answered: a busy service that misses a
    # reading does not turn its throughput into zero.
    answered: dict[str, Reading] = {}
    for moment in history:
        times.append(round(max(r.at for r in moment.values()), 3))
        for s in services:
            new, old = moment.get(s), answered.get(s)
            reached = new if new is not None and new.reachable else None
            throughput[s].append(
                round(rate(old, reached, "sts_messages_handled_total", outcome="processed"), 3)
                if reached and old
                else None
            )
            lag[s].append(reached.total("sts_consumer_lag") if reached else None)
        new, old = moment.get("signals"), answered.get("signals")
        ingest.append(
            round(rate(old, new, "sts_http_requests_total", route="/v1/signals", method="POST", status="202"), 3)
            if new is not None and new.reachable and old
            else None
        )
        answered |= {s: r for s, r in moment.items() if r.reachable}
    return {"time": times, "services": list(services), "throughput": throughput, "lag": lag, "ingest": ingest}
