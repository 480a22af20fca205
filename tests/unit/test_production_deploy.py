"""The production deployment's pieces that run outside the services, checked without Docker:
the Kafka ACLs derived from the code (and the checked-in table equal to them), the scripts that
start Kafka and apply the principals and ACLs (run with stand-in Kafka tools that record their
arguments), and the TLS material script (run with openssl)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from deploy import kafka_acls
from shared.contracts import Topics

REPO = Path(__file__).resolve().parents[2]
KAFKA_DIR = REPO / "deploy" / "kafka"
SERVICES = ("signals", "screening", "matching", "notify", "municipalities", "casework", "operators")


@pytest.fixture(scope="module")
def generated() -> list[kafka_acls.Acl]:
    return kafka_acls.all_acls()


def allowed(acls: list[kafka_acls.Acl], principal: str, operation: str, resource: str = "topic") -> set[str]:
    return {a.name for a in acls if a.principal == principal and a.resource == resource and operation in a.operations}


def test_the_checked_in_acls_are_what_the_code_declares(generated):
    checked_in = (KAFKA_DIR / "acls.tsv").read_text()
    assert checked_in == kafka_acls.render(generated), (
        "deploy/kafka/acls.tsv is stale: run python -m deploy.kafka_acls --output deploy/kafka/acls.tsv"
    )
    assert kafka_acls.parse(checked_in) == sorted(generated)


def test_one_principal_per_service_and_no_wildcards(generated):
    # The operator console touches no topic: a login (see setup), no ACL.
    assert {a.principal for a in generated} == set(SERVICES) - {"operators"}
    for acl in generated:
        assert "*" not in acl.name and acl.name, acl
        assert acl.resource in ("topic", "group") and acl.pattern in ("literal", "prefixed")
        assert set(acl.operations) <= {"Create", "Describe", "Read", "Write"}, acl


def test_each_service_writes_only_its_own_topic_its_dead_letters_and_replays(generated):
    produced = {
        "signals": Topics.SIGNALS,
        "screening": Topics.SCREENING,
        "matching": Topics.MATCHING,
        "notify": Topics.NOTIFY,
        "casework": Topics.CASEWORK,
    }
    for service, topic in produced.items():
        consumed = allowed(generated, service, "Read")
        assert allowed(generated, service, "Write") == {topic, *consumed, *(Topics.dlq(t) for t in consumed)}
        assert topic not in consumed, f"{service} does not read its own topic"
    # Nobody else writes a stage's topic, except to replay a dead letter of its own consumer.
    for service, topic in produced.items():
        writers = {a.principal for a in generated if a.name == topic and "Write" in a.operations}
        readers = {a.principal for a in generated if a.name == topic and "Read" in a.operations}
        assert writers == {service} | readers


def test_the_consumers_and_their_groups(generated):
    expected = {
        "signals": {Topics.SCREENING, Topics.MATCHING, Topics.NOTIFY, Topics.CASEWORK},
        "screening": {Topics.SIGNALS, Topics.NOTIFY, Topics.CASEWORK},
        "matching": {Topics.SCREENING, Topics.NOTIFY, Topics.SIGNALS},
        "notify": {Topics.MATCHING, Topics.SIGNALS, Topics.CASEWORK},
        "municipalities": {Topics.SIGNALS, Topics.SCREENING, Topics.MATCHING, Topics.NOTIFY},
        "casework": {Topics.SIGNALS, Topics.SCREENING, Topics.MATCHING, Topics.NOTIFY},
    }
    for service, topics in expected.items():
        assert allowed(generated, service, "Read") == topics, service
        assert allowed(generated, service, "Read", "group") == {f"{service}.{t}" for t in topics}, service


def test_only_municipalities_may_make_municipality_topics(generated):
    prefixed = [a for a in generated if a.pattern == "prefixed"]
    assert [(a.principal, a.name, a.operations) for a in prefixed] == [
        ("municipalities", "municipality.", ("Create", "Describe", "Write"))
    ]
    assert kafka_acls.prefix_of("municipality.{municipality_code}.events.v1") == "municipality."
    with pytest.raises(ValueError):
        kafka_acls.prefix_of("{code}.events")


def test_the_generator_command(tmp_path):
    import sys

    run = [sys.executable, "-m", "deploy.kafka_acls"]
    result = subprocess.run([*run, "--help"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "--check" in result.stdout
    out = tmp_path / "acls.tsv"
    assert kafka_acls.main(["--output", str(out)]) == 0
    assert out.read_text() == (KAFKA_DIR / "acls.tsv").read_text()
    assert kafka_acls.main(["--check"]) == 0


# --- The Kafka scripts, with stand-in tools --------------------------------------------------------

RECORDER = """#!/usr/bin/env bash
printf '%s\\0' "$(basename "$0")" "$@" >> "$CALLS"; printf '\\n' >> "$CALLS"
"""


def stand_in_tools(tmp_path: Path, *names: str) -> tuple[Path, Path]:
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in names:
        (tools / name).write_text(RECORDER)
        (tools / name).chmod(0o755)
    return tools, tmp_path / "calls"


def calls(path: Path) -> list[list[str]]:
    return [line.strip("\0").split("\0") for line in path.read_text().split("\0\n") if line.strip("\0\n")]


def passwords() -> dict[str, str]:
    return {f"{s.upper()}_KAFKA_PASSWORD": f"{s}-0123456789abcdef" for s in SERVICES}


def run_setup(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], Path]:
    tools, record = stand_in_tools(tmp_path, "kafka-configs.sh", "kafka-acls.sh")
    result = subprocess.run(
        ["bash", str(KAFKA_DIR / "setup.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": os.environ["PATH"],
            "CALLS": str(record),
            "KAFKA_BIN": str(tools),
            "KAFKA_ACLS": str(KAFKA_DIR / "acls.tsv"),
            **env,
        },
    )
    return result, record


def test_setup_creates_each_principal_and_exactly_the_acls_of_the_table(tmp_path, generated):
    result, record = run_setup(tmp_path, {"KAFKA_ADMIN_PASSWORD": "admin-0123456789abcdef", **passwords()})
    assert result.returncode == 0, result.stderr
    made = calls(record)
    users = [c for c in made if c[0] == "kafka-configs.sh"]
    assert sorted(c[c.index("--entity-name") + 1] for c in users) == sorted(SERVICES)
    for c in users:
        name = c[c.index("--entity-name") + 1]
        assert c[c.index("--add-config") + 1] == f"SCRAM-SHA-512=[password={name}-0123456789abcdef]"
        assert c[1:5] == ["--bootstrap-server", "kafka:9092", "--command-config", c[4]]
    applied = []
    for c in (c for c in made if c[0] == "kafka-acls.sh"):
        assert "--add" in c
        principal = c[c.index("--allow-principal") + 1].removeprefix("User:")
        pattern = c[c.index("--resource-pattern-type") + 1]
        operations = tuple(c[i + 1] for i, a in enumerate(c) if a == "--operation")
        for i, arg in enumerate(c):
            if arg in ("--topic", "--group"):
                applied.append(kafka_acls.Acl(principal, arg[2:], pattern, c[i + 1], operations))
    assert sorted(applied) == sorted(generated)


def test_setup_refuses_a_missing_service_password(tmp_path):
    env = {"KAFKA_ADMIN_PASSWORD": "admin-0123456789abcdef", **passwords()}
    env.pop("NOTIFY_KAFKA_PASSWORD")
    result, _ = run_setup(tmp_path, env)
    assert result.returncode != 0 and "NOTIFY_KAFKA_PASSWORD" in result.stderr


def test_start_formats_once_with_the_admin_user_and_keeps_secrets_out_of_the_repository(tmp_path):
    tools, record = stand_in_tools(tmp_path, "kafka-storage.sh", "kafka-server-start.sh")
    work = tmp_path / "work"
    env = {
        "PATH": os.environ["PATH"],
        "CALLS": str(record),
        "KAFKA_BIN": str(tools),
        "STS_KAFKA_WORK": str(work),
        "STS_KAFKA_CONFIG": str(KAFKA_DIR / "server.properties"),
        "CLUSTER_ID": "altgoFD3RE6mj6SJ5UKaog",
        "KAFKA_ADMIN_PASSWORD": "admin-0123456789abcdef",
        "KAFKA_SSL_KEYSTORE_PASSWORD": "store-0123456789abcdef",
    }
    result = subprocess.run(["bash", str(KAFKA_DIR / "start.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    (storage, start) = calls(record)
    config = str(work / "server.properties")
    assert storage == [
        "kafka-storage.sh",
        "format",
        "--ignore-formatted",
        "--cluster-id",
        "altgoFD3RE6mj6SJ5UKaog",
        "--config",
        config,
        "--add-scram",
        "SCRAM-SHA-512=[name=admin,password=admin-0123456789abcdef]",
    ]
    assert start == ["kafka-server-start.sh", config]
    written = Path(config).read_text()
    assert written.startswith((KAFKA_DIR / "server.properties").read_text())
    assert "ssl.keystore.password=store-0123456789abcdef" in written
    assert 'username="admin" password="admin-0123456789abcdef"' in written
    assert oct(work.stat().st_mode & 0o777) == "0o700"
    admin = (work / "admin.properties").read_text()
    assert "security.protocol=SASL_SSL" in admin and "ssl.truststore.location=/etc/kafka/secrets/ca.crt" in admin
    env.pop("KAFKA_SSL_KEYSTORE_PASSWORD")
    result = subprocess.run(["bash", str(KAFKA_DIR / "start.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "KAFKA_SSL_KEYSTORE_PASSWORD" in result.stderr


# --- TLS material -------------------------------------------------------------------------------


def test_create_certs_makes_verifiable_certificates_for_each_server(tmp_path):
    env = {"PATH": os.environ["PATH"], "PUBLIC_HOST": "steun.example.nl", "KAFKA_SSL_KEYSTORE_PASSWORD": "store-pw"}
    script = REPO / "deploy" / "certs" / "create-certs.sh"
    subprocess.run(["bash", str(script), str(tmp_path)], env=env, check=True, capture_output=True, timeout=120)
    for name, host in (("postgres", "postgres"), ("public", "steun.example.nl")):
        verify = subprocess.run(
            [
                "openssl",
                "verify",
                "-CAfile",
                str(tmp_path / "ca.crt"),
                "-verify_hostname",
                host,
                str(tmp_path / f"{name}.crt"),
            ],
            capture_output=True,
            text=True,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert oct((tmp_path / f"{name}.key").stat().st_mode & 0o777) == "0o600"
    kafka = subprocess.run(
        ["openssl", "pkcs12", "-in", str(tmp_path / "kafka.p12"), "-passin", "pass:store-pw", "-nokeys", "-clcerts"],
        capture_output=True,
        text=True,
    )
    assert kafka.returncode == 0 and "CN = kafka" in kafka.stdout.replace("CN=kafka", "CN = kafka"), kafka.stderr
    wrong = subprocess.run(
        ["openssl", "pkcs12", "-in", str(tmp_path / "kafka.p12"), "-passin", "pass:wrong", "-nokeys"],
        capture_output=True,
        text=True,
    )
    assert wrong.returncode != 0, "the keystore is protected by its password"
    assert not (tmp_path / "kafka.key").exists(), "the broker's key lives only inside the keystore"
    # Existing material is kept: a second run changes nothing.
    before = (tmp_path / "ca.crt").read_bytes()
    subprocess.run(["bash", str(script), str(tmp_path)], env=env, check=True, capture_output=True, timeout=120)
    assert (tmp_path / "ca.crt").read_bytes() == before
