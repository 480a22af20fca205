"""Matching's own Prometheus metrics, in the service's registry (served on ``/metrics``):
proposal outcomes and no-match reasons (counted when the handler runs, so a retried
transaction counts again), and the social map's state, read from its tables at each scrape."""

from __future__ import annotations

import asyncpg

from shared.metrics import MetricSet, counter, gauge


class MatchingMetrics(MetricSet):
    proposals = counter(
        "sts_match_outcomes_total", "Matching rounds by outcome: matched (a service proposed) or no_match.", "outcome"
    )
    no_match = counter(
        "sts_no_match_reasons_total", "Why the social map fell short (the matching domain's fixed reasons).", "reason"
    )
    full = gauge("sts_services_at_capacity", "Active services on the social map with no place available.")
    unassured = gauge(
        "sts_social_map_unassured_services",
        "Active services whose entry was not assured (checked) for a year, or never.",
    )

    def count(self, proposed: bool, reason: str | None) -> None:
        self.proposals.labels("matched" if proposed else "no_match").inc()
        for part in (reason or "").split("; "):
            if part:
                self.no_match.labels(part).inc()

    async def refresh(self, pool: asyncpg.Pool) -> None:
        row = await pool.fetchrow(
            """SELECT
                 (SELECT count(DISTINCT s.id) FROM service s JOIN service_capacity c ON c.service_id = s.id
                  WHERE s.status = 'active' AND c.available = 0
                    AND NOT EXISTS (SELECT 1 FROM service_capacity o WHERE o.service_id = s.id AND o.available > 0)
                 ) AS full,
                 (SELECT count(*) FROM service
                  WHERE status = 'active' AND (assured_date IS NULL OR assured_date < current_date - 365)
                 ) AS unassured"""
        )
        self.full.set(row["full"])
        self.unassured.set(row["unassured"])
