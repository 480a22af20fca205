"""docker-compose.yml, Dockerfile, .dockerignore and the PostgreSQL init script, checked without
Docker: the compose file against the Compose Specification JSON schema (see compose_schema.py
for where the schema comes from), then the project's own rules on top."""

from __future__ import annotations

import base64
import http.server
import os
import re
import shlex
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

try:  # tests/unit may or may not be a package
    from . import compose_schema
except ImportError:
    import compose_schema

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
INIT_SCRIPT = REPO / "deploy" / "postgres" / "init-databases.sh"

APP_SERVICES = {"signals": 8080, "screening": 8081, "matching": 8082, "notify": 8083, "municipalities": 8084,
                "operators": 8085}
INFRA_SERVICES = ("kafka", "postgres")
# Monitoring (issue 13): published on localhost only, each with a healthcheck.
MONITORING_SERVICES = {"prometheus": 9090, "alertmanager": 9093, "grafana": 3000, "kafka-exporter": None,
                       "postgres-exporter": None}
DEMO_STRINGS = ("demo-gp-key", "demo-wijkteam-key", "dev-only-pseudonym-key")
# Secrets: compose must refuse to start without them, so they must use ${VAR:?message}.
REQUIRED_SECRETS = (
    "POSTGRES_PASSWORD", "SIGNALS_DB_PASSWORD", "SCREENING_DB_PASSWORD", "MATCHING_DB_PASSWORD",
    "NOTIFY_DB_PASSWORD", "MUNICIPALITIES_DB_PASSWORD", "SIGNALS_PSEUDONYM_KEY",
    "OPERATORS_DB_PASSWORD", "GRAFANA_ADMIN_PASSWORD",
)
# What a user would put in .env: distinct values, so mix-ups between services show.
SECRET_ENV = {name: f"{name.lower().replace('_', '-')}-value" for name in REQUIRED_SECRETS}


# --- Compose variable interpolation (the subset of the Compose Specification's rules) ---------

REFERENCE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>.*))?$", re.S)


class MissingVariable(Exception):
    pass


def references(text: str) -> list[tuple[str, str | None, str | None]]:
    """(name, operator, argument) of every ${...} or $NAME in ``text``; ``$$`` is an escape."""
    found = []
    for match in REFERENCE.finditer(text):
        if match["escaped"]:
            continue
        if match["named"]:
            found.append((match["named"], None, None))
            continue
        braced = BRACED.match(match["braced"])
        assert braced, f"malformed variable reference {match[0]!r}"
        found.append((braced["name"], braced["op"], braced["arg"]))
    return found


def interpolate(text: str, env: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        braced = BRACED.match(match["braced"])
        assert braced, f"malformed variable reference {match[0]!r}"
        name, op, arg = braced["name"], braced["op"], braced["arg"]
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return value if value is not None else arg
        if op in (":?", "?") and (value is None or (op == ":?" and not value)):
            raise MissingVariable(f"{name}: {arg}")
        if op == ":+":
            return arg if value else ""
        if op == "+":
            return arg if value is not None else ""
        return value or ""

    return REFERENCE.sub(substitute, text)


def load_compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file as ``docker compose`` sees it: interpolated with ``env``, or raw."""
    text = COMPOSE_FILE.read_text()
    if env is not None:
        # Compose interpolates values, not comments: drop full-line comments first.
        text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        text = interpolate(text, env)
    return yaml.safe_load(text)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose(SECRET_ENV)


@pytest.fixture(scope="module")
def spec_schema() -> tuple[dict[str, Any], str]:
    try:
        return compose_schema.load()
    except compose_schema.SchemaUnavailable as exc:
        pytest.fail(f"the Compose Specification schema could not be obtained: {exc}")


def app_env(compose: dict[str, Any], service: str) -> dict[str, Any]:
    environment = compose["services"][service]["environment"]
    assert isinstance(environment, dict), f"{service}: write environment as a mapping"
    return environment


# --- The Compose Specification ----------------------------------------------------------------


def validate(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    ]


def test_raw_compose_file_matches_the_compose_specification(raw, spec_schema):
    schema, source = spec_schema
    errors = validate(raw, schema)
    assert not errors, f"docker-compose.yml is not valid against {source}:\n" + "\n".join(errors)


def test_interpolated_compose_file_matches_the_compose_specification(compose, spec_schema):
    schema, source = spec_schema
    errors = validate(compose, schema)
    assert not errors, f"interpolated docker-compose.yml is not valid against {source}:\n" + "\n".join(errors)


def test_the_schema_rejects_what_compose_rejects(raw, spec_schema):
    """Guards against a schema that accepts anything (a wrong file, an empty download)."""
    schema, _ = spec_schema
    broken = yaml.safe_load(yaml.safe_dump(raw))
    broken["services"]["signals"]["restart_policy"] = "always"  # not a service key
    broken["services"]["kafka"]["depends_on"] = {"postgres": {"condition": "healthy"}}
    errors = validate(broken, schema)
    assert any("restart_policy" in e for e in errors), errors
    assert any("depends_on" in e for e in errors), errors


def test_no_version_key(raw):
    assert "version" not in raw, "the Compose Specification has no version: key"


# --- Variables and secrets --------------------------------------------------------------------


def test_every_variable_has_a_default_or_an_error():
    problems = []
    for name, op, arg in references(COMPOSE_FILE.read_text()):
        if op in (":-", "-"):
            continue
        if op in (":?", "?") and arg and arg.strip():
            continue
        problems.append(f"${{{name}{op or ''}{arg or ''}}}")
    assert not problems, "variables without a default (${VAR:-x}) or an error (${VAR:?msg}): " + ", ".join(problems)


def test_secrets_are_required_and_have_no_default():
    refs = references(COMPOSE_FILE.read_text())
    for secret in REQUIRED_SECRETS:
        ops = {op for name, op, _ in refs if name == secret}
        assert ops == {":?"}, f"{secret} must always be written ${{{secret}:?message}}, found {ops}"


@pytest.mark.parametrize("secret", REQUIRED_SECRETS)
def test_compose_refuses_to_start_without_each_secret(secret):
    env = {k: v for k, v in SECRET_ENV.items() if k != secret}
    with pytest.raises(MissingVariable, match=secret):
        load_compose(env)
    with pytest.raises(MissingVariable, match=secret):
        load_compose({**env, secret: ""})


def test_no_demo_keys_anywhere():
    for path in (COMPOSE_FILE, DOCKERFILE, DOCKERIGNORE, INIT_SCRIPT):
        text = path.read_text().lower()
        for demo in DEMO_STRINGS:
            assert demo not in text, f"{path.name} contains {demo!r}"


def test_pseudonym_key_comes_from_the_environment(raw, compose):
    assert raw["services"]["signals"]["environment"]["SIGNALS_PSEUDONYM_KEY"].startswith("${SIGNALS_PSEUDONYM_KEY:?")
    assert app_env(compose, "signals")["SIGNALS_PSEUDONYM_KEY"] == SECRET_ENV["SIGNALS_PSEUDONYM_KEY"]
    for name in APP_SERVICES.keys() - {"signals"}:
        assert "SIGNALS_PSEUDONYM_KEY" not in app_env(compose, name), f"{name} does not need the key"


# --- Services ---------------------------------------------------------------------------------


def test_the_expected_services(compose):
    assert set(compose["services"]) == set(APP_SERVICES) | set(INFRA_SERVICES) | set(MONITORING_SERVICES)


def test_monitoring_images_are_pinned_and_ports_local(compose):
    for name, port in MONITORING_SERVICES.items():
        service = compose["services"][name]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", service["image"]), f"{name}: pin the image version"
        ports = published(service)
        assert ports == ([f"127.0.0.1:{port}:{port}"] if port else []), f"{name}: localhost only"


def test_every_service_has_a_healthcheck(compose):
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        assert check.get("test"), f"{name}: healthcheck without test"
        assert check["test"] != ["NONE"], f"{name}: healthcheck disabled"
        for key in ("interval", "timeout", "retries", "start_period"):
            assert key in check, f"{name}: healthcheck without {key}"


def test_app_services_wait_for_healthy_kafka_and_postgres(compose):
    for name in APP_SERVICES:
        depends = compose["services"][name].get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on must name conditions"
        for infra in INFRA_SERVICES:
            assert depends.get(infra, {}).get("condition") == "service_healthy", (
                f"{name} must wait for {infra} with condition service_healthy"
            )


def test_app_services_run_the_image_with_their_command(compose):
    for name, port in APP_SERVICES.items():
        service = compose["services"][name]
        assert service["build"]["context"] == "."
        assert service["build"].get("dockerfile", "Dockerfile") == "Dockerfile"
        assert service["command"] == ["python", "-m", f"services.{name}.main"]
        assert (REPO / "services" / name / "main.py").exists()
        assert service["restart"] == "unless-stopped"
        assert re.fullmatch(r"\d+(s|m)", service["stop_grace_period"]), service["stop_grace_period"]


def test_app_service_environment(compose):
    for name, port in APP_SERVICES.items():
        env = app_env(compose, name)
        prefix = name.upper() + "_"
        assert env[prefix + "HOST"] == "0.0.0.0"
        assert str(env[prefix + "PORT"]) == str(port)
        assert env[prefix + "LOG_FORMAT"] == "json"
        assert env["KAFKA_IDEMPOTENCE"] == "true"
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert str(env["KAFKA_REPLICATION_FACTOR"]) == "1"
        assert int(env["KAFKA_PARTITIONS"]) >= 1
        foreign = [k for k in env if k.split("_")[0].lower() in APP_SERVICES and not k.startswith(prefix)]
        assert not foreign, f"{name} gets another service's settings: {foreign}"


def test_app_service_environment_is_read_by_the_service_settings(compose, monkeypatch):
    """Each variable maps to a real settings field, and the settings parse from it."""
    import importlib

    expected_classes = {"signals": "SignalsSettings", "screening": "ScreeningSettings",
                        "matching": "MatchingSettings", "notify": "NotifySettings",
                        "municipalities": "MunicipalitiesSettings", "operators": "OperatorsSettings"}
    for name, port in APP_SERVICES.items():
        settings_cls = getattr(importlib.import_module(f"services.{name}.config"), expected_classes[name])
        from shared.config import KafkaSettings

        prefix = name.upper() + "_"
        env = app_env(compose, name)
        for key in env:
            if key.startswith("KAFKA_"):
                field = key.removeprefix("KAFKA_").lower()
                assert field in KafkaSettings.model_fields, f"{name}: {key} is not a Kafka setting"
            elif env[key] is not None:  # None: passed through only when set (optional extras)
                field = key.removeprefix(prefix).lower()
                assert field in settings_cls.model_fields, f"{name}: {key} is not a {settings_cls.__name__} field"
        for key in list(os.environ):
            if key.startswith(("KAFKA_", "SIGNALS_", "SCREENING_", "MATCHING_", "NOTIFY_", "MUNICIPALITIES_",
                               "OPERATORS_")):
                monkeypatch.delenv(key)
        for key, value in env.items():
            if value is not None:
                monkeypatch.setenv(key, str(value))
        settings = settings_cls()
        assert settings.port == port and settings.host == "0.0.0.0" and settings.log_format == "json"
        assert settings.database_url == env[prefix + "DATABASE_URL"]
        assert settings.kafka.idempotence is True
        assert settings.kafka.bootstrap_servers == "kafka:9092"
        if name == "signals":
            assert settings.pseudonym_key.get_secret_value() == SECRET_ENV["SIGNALS_PSEUDONYM_KEY"]


def published(service: dict[str, Any]) -> list[str]:
    return [str(p) for p in service.get("ports", [])]


def test_ports(compose):
    assert published(compose["services"]["signals"]) == ["8080:8080"]
    assert published(compose["services"]["municipalities"]) == ["8084:8084"]  # municipalities call it
    for name in ("screening", "matching", "notify", "operators"):
        port = APP_SERVICES[name]
        assert published(compose["services"][name]) == [f"127.0.0.1:{port}:{port}"], f"{name}: localhost only"
    assert not compose["services"]["postgres"].get("ports"), "PostgreSQL is not published"
    for port in published(compose["services"]["kafka"]):
        assert port.startswith("127.0.0.1:"), "Kafka is published on localhost only"


def test_healthchecks_hit_each_service_port(compose):
    for name, port in APP_SERVICES.items():
        test = compose["services"][name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], f"{name}: healthcheck is a python one-liner"
        assert f"http://127.0.0.1:{port}/healthz" in test[3]


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("status, healthy", [(200, True), (503, False)])
def test_healthcheck_one_liner_tells_healthy_from_unavailable(compose, status, healthy):
    handler = type("Handler", (_Health,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for name, port in APP_SERVICES.items():
            code = compose["services"][name]["healthcheck"]["test"][3]
            code = code.replace(f"127.0.0.1:{port}/", f"127.0.0.1:{server.server_port}/")
            result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
            assert (result.returncode == 0) is healthy, (name, status, result.returncode, result.stderr[-500:])
    finally:
        server.shutdown()
        server.server_close()


# --- PostgreSQL -------------------------------------------------------------------------------


def init_script_services() -> list[str]:
    match = re.search(r"^SERVICES=\(([^)]*)\)", INIT_SCRIPT.read_text(), re.M)
    assert match, "init-databases.sh lists its services in SERVICES=(...)"
    return match[1].split()


def test_each_service_database_url_points_at_its_own_database(compose):
    seen = set()
    for name in APP_SERVICES:
        url = urlsplit(app_env(compose, name)[name.upper() + "_DATABASE_URL"])
        assert url.scheme == "postgresql"
        assert (url.hostname, url.port) == ("postgres", 5432)
        assert url.path == f"/{name}", f"{name} must use database {name!r}, not {url.path!r}"
        assert url.username == name, f"{name} must connect as role {name!r}"
        assert url.password == SECRET_ENV[f"{name.upper()}_DB_PASSWORD"], f"{name}: its own password"
        seen.add((url.path, url.username, url.password))
    assert len(seen) == len(APP_SERVICES)
    assert sorted(init_script_services()) == sorted(APP_SERVICES), "the init script creates every database"


def test_postgres_runs_the_init_script_with_the_service_passwords(compose):
    postgres = compose["services"]["postgres"]
    assert re.fullmatch(r"postgres:(16|17)(\.\d+)*(-\w+)?", postgres["image"]), postgres["image"]
    mounts = [str(v).split(":") for v in postgres["volumes"]]
    init = [m for m in mounts if m[0] == "./deploy/postgres/init-databases.sh"]
    assert init and init[0][1].startswith("/docker-entrypoint-initdb.d/") and init[0][1].endswith(".sh")
    assert any(m[1] == "/var/lib/postgresql/data" and m[0] in compose["volumes"] for m in mounts)
    env = postgres["environment"]
    for name in init_script_services():
        assert env[f"{name.upper()}_DB_PASSWORD"] == SECRET_ENV[f"{name.upper()}_DB_PASSWORD"]
    test = postgres["healthcheck"]["test"]
    assert "pg_isready" in " ".join(test)


def test_init_script_is_executable_bash_without_passwords():
    mode = INIT_SCRIPT.stat().st_mode
    assert mode & stat.S_IXUSR, "the postgres image runs executable *.sh init scripts"
    assert INIT_SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")
    subprocess.run(["bash", "-n", str(INIT_SCRIPT)], check=True)
    text = INIT_SCRIPT.read_text()
    assert "_DB_PASSWORD" in text and "PASSWORD '" not in text.upper()


def test_init_script_fails_without_a_password(tmp_path):
    fake_psql = tmp_path / "psql"
    fake_psql.write_text("#!/bin/sh\ncat > /dev/null\n")
    fake_psql.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "SIGNALS_DB_PASSWORD": "a", "SCREENING_DB_PASSWORD": "b",
           "MATCHING_DB_PASSWORD": "c", "NOTIFY_DB_PASSWORD": "d"}
    result = subprocess.run(["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "MUNICIPALITIES_DB_PASSWORD" in result.stderr
    result = subprocess.run(["bash", str(INIT_SCRIPT)], env={**env, "MUNICIPALITIES_DB_PASSWORD": "e"},
                            capture_output=True, text=True)
    assert result.returncode != 0 and "OPERATORS_DB_PASSWORD" in result.stderr
    result = subprocess.run(["bash", str(INIT_SCRIPT)],
                            env={**env, "MUNICIPALITIES_DB_PASSWORD": "e", "OPERATORS_DB_PASSWORD": "f"},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- Kafka ------------------------------------------------------------------------------------


def test_kafka_runs_kraft_without_zookeeper(compose):
    kafka = compose["services"]["kafka"]
    assert re.fullmatch(r"apache/kafka:(3\.9\.\d+|4\.\d+\.\d+)", kafka["image"]), kafka["image"]
    env = {k: str(v) for k, v in kafka["environment"].items()}
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{node_id}@kafka:")
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert f"{controller}://" in env["KAFKA_LISTENERS"]
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    assert "zookeeper" not in yaml.safe_dump(compose).lower(), "no ZooKeeper service or setting"
    assert not any("zookeeper" in str(s.get("image", "")) for s in compose["services"].values())
    check = " ".join(kafka["healthcheck"]["test"])
    assert "kafka-broker-api-versions.sh" in check or "kafka-topics.sh" in check
    assert "kafka-data:/var/lib/kafka/data" in kafka["volumes"] and env["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"


def test_named_volumes_are_declared_and_used(compose):
    declared = set(compose["volumes"])
    assert {"kafka-data", "postgres-data"} <= declared
    used = {str(v).split(":")[0] for s in compose["services"].values() for v in s.get("volumes", [])}
    assert declared <= used, f"declared but unused: {declared - used}"
    assert {u for u in used if not u.startswith(".")} <= declared, "every named volume is declared"


# --- Dockerfile and .dockerignore -------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile():
    steps = dockerfile_instructions()
    froms = [arg for op, arg in steps if op == "FROM"]
    assert froms and froms[-1].split()[0].startswith("python:3.11-slim")
    users = [arg for op, arg in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image runs as a non-root user"
    cmd = [arg for op, arg in steps if op == "CMD"]
    assert cmd and yaml.safe_load(cmd[-1]) == ["python", "-m", "services.signals.main"]
    runs = " ".join(arg for op, arg in steps if op == "RUN")
    assert re.search(r"pip install (--no-deps )?\.(\s|$)", runs), "the project is installed with pip install ."
    copies = [arg for op, arg in steps if op == "COPY"]
    first_source = next(i for i, c in enumerate(copies) if shlex.split(c)[0] in ("shared", "services", "deploy", "."))
    assert any(shlex.split(c)[0] == "pyproject.toml" for c in copies[:first_source]), (
        "dependencies are installed from pyproject.toml before the source is copied (layer caching)"
    )
    for op, arg in steps:
        if op == "COPY":
            assert shlex.split(arg)[0] != "tests", "tests stay out of the image"


def test_dockerignore():
    entries = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")}
    for required in (".venv", ".data", ".git", "tests", "**/__pycache__", ".pytest_cache"):
        assert required in entries, f".dockerignore lacks {required}"
    for needed in ("pyproject.toml", "shared", "services", "deploy"):
        assert needed not in entries and f"{needed}/" not in entries, f".dockerignore must not exclude {needed}"
