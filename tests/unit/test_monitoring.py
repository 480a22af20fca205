"""The compose monitoring stack, checked without Docker: Prometheus' configuration and alert
rules with promtool (Debian's ``prometheus`` package, installed when missing), the alert rules'
own unit tests, every alert's runbook, and the Grafana provisioning and dashboards (every
dashboard query must be valid PromQL). That every metric they use is one the services export
is checked against a running stack in tests/e2e/test_operators.py."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tools import ensure_debian_tool

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "deploy" / "monitoring"
RULES = MONITORING / "rules" / "alerts.yml"
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
# What issue 13 asks an alert for, each with a runbook.
REQUIRED_ALERTS = {
    "ServiceDown",
    "ServiceNotReady",
    "ConsumerLagGrowing",
    "OutboxStuck",
    "NewDeadLetter",
    "DeliveryFailures",
    "CrisisNotEscalated",
    "ReferralsPastDeadlinePilingUp",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    return ensure_debian_tool("promtool", "prometheus")


def run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([promtool, *args], cwd=MONITORING, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expression) of every query of every dashboard."""
    found = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                found.append((path.name, panel["title"], target["expr"]))
    return found


def test_prometheus_configuration_is_valid(promtool: str) -> None:
    out = run(promtool, "check", "config", "prometheus.yml").stdout
    assert "1 rule files found" in out


def test_alert_rules_are_valid(promtool: str) -> None:
    run(promtool, "check", "rules", str(RULES))


def test_alert_rules_pass_their_unit_tests(promtool: str) -> None:
    out = run(promtool, "test", "rules", "tests/alerts_test.yml").stdout
    assert "SUCCESS" in out


def test_every_required_alert_exists_and_is_tested() -> None:
    names = {rule["alert"] for rule in alerts()}
    assert names >= REQUIRED_ALERTS, REQUIRED_ALERTS - names
    tested = set(re.findall(r"alertname: (\w+)", (MONITORING / "tests" / "alerts_test.yml").read_text()))
    assert tested >= REQUIRED_ALERTS, f"alerts without a promtool test: {REQUIRED_ALERTS - tested}"


def test_every_alert_links_an_existing_runbook() -> None:
    for rule in alerts():
        runbook = rule["annotations"].get("runbook")
        assert runbook, f"{rule['alert']} has no runbook annotation"
        assert (REPO / runbook).is_file(), f"{rule['alert']}: {runbook} does not exist"
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"].get("summary") and rule["annotations"].get("description")


def test_every_dashboard_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    # promtool checks PromQL only inside rule files: each query becomes a recording rule.
    queries = dashboard_queries()
    assert len(queries) >= 30
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": expr.replace("$job", ".+")}
                    for i, (_, _, expr) in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump(rules))
    run(promtool, "check", "rules", str(path))


def test_dashboards_are_provisioned_from_the_repository() -> None:
    assert {p.stem for p in DASHBOARDS} == {"services", "pipeline", "domain"}
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        uids.add(dashboard["uid"])
        for panel in dashboard["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, (path.name, panel["title"])
    assert len(uids) == len(DASHBOARDS)
    datasource = yaml.safe_load((MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["uid"] == "prometheus"
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((MONITORING / "grafana/provisioning/dashboards/dashboards.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_dashboards_cover_what_operators_watch() -> None:
    text = " ".join(expr for _, _, expr in dashboard_queries())
    for metric in (
        "up",
        "sts_ready",
        "sts_consumer_lag",
        "sts_messages_handled_total",
        "sts_handler_seconds_bucket",
        "sts_outbox_pending",
        "sts_outbox_oldest_pending_age_seconds",
        "sts_dead_letters",
        "sts_http_requests_total",
        "sts_http_request_seconds_bucket",
        "sts_pipeline_signals_last_hour",
        "sts_pipeline_ingest_to_notified_seconds",
        "sts_screenings_total",
        "sts_no_match_reasons_total",
        "sts_match_outcomes_total",
        "sts_services_at_capacity",
        "sts_referrals_past_deadline",
        "sts_follow_ups_total",
        "sts_social_map_unassured_services",
    ):
        assert re.search(rf"\b{metric}\b", text), f"no dashboard shows {metric}"


def test_prometheus_scrapes_every_service_and_exporter() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())

    def target(job: dict[str, Any]) -> str:
        # A scaled-out service is found through DNS (every instance), the rest by name.
        if "dns_sd_configs" in job:
            [sd] = job["dns_sd_configs"]
            return f"{sd['names'][0]}:{sd['port']}"
        return str(job["static_configs"][0]["targets"][0])

    jobs = {job["job_name"]: target(job) for job in config["scrape_configs"]}
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    for job in config["scrape_configs"]:
        if "dns_sd_configs" in job:
            assert "replicas" in compose[job["job_name"]]["deploy"], job["job_name"]
    for job in ("signals", "screening", "matching", "notify", "municipalities", "casework", "operators"):
        host, port = jobs[job].split(":")
        assert host == job and host in compose
        # /metrics is served on the internal port only (never through the proxy).
        assert compose[job]["environment"][f"{job.upper()}_INTERNAL_PORT"] == port
    assert jobs["kafka"].split(":")[0] == "kafka-exporter" in compose
    assert jobs["postgres"].split(":")[0] == "postgres-exporter" in compose
