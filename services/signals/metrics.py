"""The pipeline as the signals service sees it (every signal's timeline is here), read from
its ``signal_stages`` table at each scrape: how many signals reached each stage in the last
hour (the funnel), and the ingest→notified latency percentiles of those notified in it."""

from __future__ import annotations

import asyncpg

from services.signals.domain import PROGRESS, Stage
from shared.metrics import MetricSet, gauge

FUNNEL = tuple(stage.value for stage in PROGRESS)
QUANTILES = (0.5, 0.95, 0.99)


class PipelineMetrics(MetricSet):
    stage = gauge(
        "sts_pipeline_signals_last_hour", "Signals that reached each stage in the last hour (the funnel).", "stage"
    )
    latency = gauge(
        "sts_pipeline_ingest_to_notified_seconds",
        "Ingest→first notification latency of the signals notified in the last hour, by quantile.",
        "quantile",
    )

    async def refresh(self, pool: asyncpg.Pool) -> None:
        rows = await pool.fetch(
            """SELECT stage, count(DISTINCT signal_id) AS n FROM signal_stages
               WHERE occurred_at > now() - interval '1 hour' AND stage = ANY($1::text[]) GROUP BY stage""",
            list(FUNNEL),
        )
        counts = {r["stage"]: r["n"] for r in rows}
        for stage in FUNNEL:
            self.stage.labels(stage).set(counts.get(stage, 0))
        latencies = await pool.fetchrow(
            """WITH firsts AS (
                   SELECT signal_id, min(occurred_at) FILTER (WHERE stage = $2) AS received,
                          min(occurred_at) FILTER (WHERE stage = $3) AS notified
                   FROM signal_stages
                   WHERE signal_id IN (SELECT signal_id FROM signal_stages
                                       WHERE stage = $3 AND occurred_at > now() - interval '1 hour')
                   GROUP BY signal_id)
               SELECT percentile_cont($1::float8[]) WITHIN GROUP
                        (ORDER BY EXTRACT(EPOCH FROM notified - received)) AS q
               FROM firsts WHERE received IS NOT NULL""",
            list(QUANTILES),
            Stage.RECEIVED.value,
            Stage.NOTIFIED.value,
        )
        for quantile, value in zip(QUANTILES, latencies["q"] or [0.0] * len(QUANTILES), strict=True):
            self.latency.labels(str(quantile)).set(value or 0.0)
