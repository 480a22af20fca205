"""Production mode (``STS_ENV=production``): a service refuses to start with a missing, development
or weak secret, or unencrypted transport, and says which variable in one line; the Kafka
client settings; and the internal listener that alone serves /metrics and the documentation."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from deploy.stack import free_port
from services.matching.config import MatchingSettings
from services.municipalities.config import MunicipalitiesSettings
from services.notify.config import NotifySettings
from services.screening.config import ScreeningSettings
from services.signals.config import SignalsSettings
from shared.config import KafkaSettings, ServiceSettings
from shared.kafka import broker_security, client_security

REPO = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, type[ServiceSettings]] = {
    "signals": SignalsSettings,
    "screening": ScreeningSettings,
    "matching": MatchingSettings,
    "notify": NotifySettings,
    "municipalities": MunicipalitiesSettings,
}
STRONG = "9f1c2a0e7b3d4c5a6e8f0a1b2c3d4e5f"


def production_env(name: str) -> dict[str, str]:
    """A complete, valid production environment for one service."""
    prefix = name.upper()
    env = {
        "STS_ENV": "production",
        "STS_INTERNAL_TOKEN": STRONG + "-internal",
        f"{prefix}_DATABASE_URL": f"postgresql://{name}:pw@postgres:5432/{name}?sslmode=verify-full",
        f"{prefix}_INTERNAL_PORT": "9000",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_USERNAME": name,
        "KAFKA_SASL_PASSWORD": STRONG,
    }
    for field in SETTINGS[name].SECRETS:
        if field != "internal_token":
            env[f"{prefix}_{field.upper()}"] = f"{STRONG}-{field}"
    if name == "notify":
        env |= {"NOTIFY_PUBLIC_URL": "https://steun.example.nl", "NOTIFY_SMTP_HOST": "smtp.example.nl"}
    return env


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith(("STS_", "KAFKA_", *(f"{n.upper()}_" for n in SETTINGS))):
            monkeypatch.delenv(key)
    return monkeypatch


def settings_from(monkeypatch: pytest.MonkeyPatch, name: str, env: dict[str, str]):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return SETTINGS[name]()


@pytest.mark.parametrize("name", SETTINGS)
def test_a_complete_production_configuration_passes(clean_env, name):
    assert settings_from(clean_env, name, production_env(name)).production_problems() == []


@pytest.mark.parametrize("name", SETTINGS)
def test_development_is_the_default_and_checks_nothing(clean_env, name):
    settings = SETTINGS[name]()
    assert settings.environment == "development"
    assert settings.production_problems() == []


SECRET_VARIABLES = [
    (name, settings.SECRETS, field) for name, settings in SETTINGS.items() for field in settings.SECRETS
]


@pytest.mark.parametrize("name, secrets, field", SECRET_VARIABLES, ids=[f"{n}-{f}" for n, _, f in SECRET_VARIABLES])
@pytest.mark.parametrize(
    "value, reason",
    [
        (None, "not set"),
        ("", "not set"),
        ("dev-only-pseudonym-key-change-me", "development value"),
        ("demo-gp-key-but-made-longer-than-24", "development value"),
        ("short-but-random", "shorter than"),
    ],
)
def test_each_declared_secret_is_refused_when_missing_dev_or_weak(clean_env, name, secrets, field, value, reason):
    env = production_env(name)
    variable = "STS_INTERNAL_TOKEN" if field == "internal_token" else f"{name.upper()}_{field.upper()}"
    env.pop(variable)
    if value is not None:
        env[variable] = value
    problems = settings_from(clean_env, name, env).production_problems()
    assert len(problems) == 1 and problems[0].startswith(f"{variable}: ") and reason in problems[0], problems


def test_the_declared_secrets(clean_env):
    assert SignalsSettings.SECRETS == ("internal_token", "pseudonym_key", "encryption_master_keys", "page_secret")
    assert NotifySettings.SECRETS == ("internal_token", "link_secret")
    assert MatchingSettings.SECRETS == ("internal_token", "admin_token")
    for name, cls in SETTINGS.items():
        # The development default of every secret is itself refused.
        defaults = cls()
        for field in cls.SECRETS:
            env = production_env(name)
            variable = defaults.env_name(field)
            default = getattr(defaults, field)
            env.pop(variable)
            if default is not None:
                env[variable] = default if isinstance(default, str) else default.get_secret_value()
            problems = settings_from(clean_env, name, env).production_problems()
            assert [p.split(":")[0] for p in problems] == [variable], problems
            for key in env:
                clean_env.delenv(key, raising=False)


@pytest.mark.parametrize(
    "variable, value, named",
    [
        ("SIGNALS_DATABASE_URL", "postgresql://signals:pw@postgres:5432/signals", "SIGNALS_DATABASE_URL"),
        (
            "SIGNALS_DATABASE_URL",
            "postgresql://signals:pw@postgres:5432/signals?sslmode=prefer",
            "SIGNALS_DATABASE_URL",
        ),
        ("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", "KAFKA_SECURITY_PROTOCOL"),
        ("KAFKA_SECURITY_PROTOCOL", "SSL", "KAFKA_SECURITY_PROTOCOL"),
        ("KAFKA_SASL_PASSWORD", "", "KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD"),
        ("SIGNALS_INTERNAL_PORT", "", "SIGNALS_INTERNAL_PORT"),
    ],
)
def test_unencrypted_transport_is_refused(clean_env, variable, value, named):
    env = production_env("signals")
    env[variable] = value
    if value == "" and variable.endswith("PORT"):
        env.pop(variable)
    problems = settings_from(clean_env, "signals", env).production_problems()
    assert [p.split(": ")[0] for p in problems] == [named], problems


def test_notify_needs_an_https_public_url_and_encrypted_mail(clean_env):
    env = production_env("notify")
    env.pop("NOTIFY_PUBLIC_URL")
    env["NOTIFY_SMTP_STARTTLS"] = "false"
    problems = settings_from(clean_env, "notify", env).production_problems()
    assert [p.split(":")[0] for p in problems] == ["NOTIFY_PUBLIC_URL", "NOTIFY_SMTP_STARTTLS"], problems
    clean_env.setenv("NOTIFY_SMTP_USE_TLS", "true")
    clean_env.setenv("NOTIFY_PUBLIC_URL", "https://steun.example.nl")
    assert NotifySettings().production_problems() == []


def test_smtp_requires_starttls_unless_turned_off(clean_env):
    assert NotifySettings().smtp_starttls is True
    clean_env.setenv("NOTIFY_SMTP_STARTTLS", "false")
    assert NotifySettings().smtp_starttls is False


def run_main(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STS_", "KAFKA_", *(f"{n.upper()}_" for n in SETTINGS)))
    }
    return subprocess.run(
        [sys.executable, "-m", f"services.{name}.main"],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_service_started_in_production_with_a_dev_secret_exits_naming_the_variable():
    env = production_env("signals") | {"SIGNALS_PSEUDONYM_KEY": "dev-only-pseudonym-key-change-me"}
    result = run_main("signals", env)
    assert result.returncode == 2, result
    assert result.stderr.strip().splitlines() == [
        "SignalsSettings: cannot start: SIGNALS_PSEUDONYM_KEY: has a development value; set a secret of your "
        "own (e.g. `openssl rand -hex 32`)"
    ], result.stderr
    assert "Traceback" not in result.stderr


def test_a_service_started_in_production_without_its_secret_exits_naming_the_variable():
    env = production_env("notify")
    env.pop("NOTIFY_LINK_SECRET")
    result = run_main("notify", env)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result
    assert result.stderr.strip().splitlines() == [
        "NotifySettings: cannot start: NOTIFY_LINK_SECRET: not set; a secret is required in production"
    ]


def test_a_value_that_does_not_parse_is_one_readable_line():
    result = run_main("screening", {"SCREENING_PORT": "eighty"})
    assert result.returncode == 2 and "Traceback" not in result.stderr, result
    assert result.stderr.startswith("ScreeningSettings: cannot start: SCREENING_PORT: ")


# --- Kafka client security ---------------------------------------------------------------------


def test_plaintext_is_the_embedded_default(clean_env):
    kafka = KafkaSettings()
    assert kafka.security_protocol == "PLAINTEXT"
    assert client_security(kafka) == {} and broker_security(kafka) is None


def test_sasl_ssl_with_scram_and_a_ca_file(clean_env, tmp_path):
    import ssl

    ca = tmp_path / "ca.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(tmp_path / "k"),
            "-out",
            str(ca),
            "-days",
            "1",
            "-subj",
            "/CN=test-ca",
        ],
        check=True,
        capture_output=True,
    )
    for key, value in {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_USERNAME": "matching",
        "KAFKA_SASL_PASSWORD": STRONG,
        "KAFKA_SSL_CAFILE": str(ca),
    }.items():
        clean_env.setenv(key, value)
    kafka = KafkaSettings()
    options = client_security(kafka)
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("matching", STRONG)
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test-ca"),),)]
    security = broker_security(kafka)
    assert security is not None and security.use_ssl and security.ssl_context is not None
    assert type(security).__name__ == "SASLScram512"


# --- The internal listener ----------------------------------------------------------------------

APP = """
from shared.config import ServiceSettings
from shared.docs import documented_app
from shared.service import serve
app = documented_app()
@app.get("/v1/things")
def things(): return {{"ok": True}}
@app.get("/metrics")
def metrics(): return "sts_up 1"
@app.get("/internal/dead-letters")
def dead_letters(): return []
serve(app, ServiceSettings(port={port}, internal_port={internal}))
"""


def test_metrics_and_docs_answer_only_on_the_internal_port():
    port, internal = free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", APP.format(port=port, internal=internal)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        public_url, internal_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{internal}"
        for _ in range(200):
            try:
                httpx.get(public_url + "/v1/things", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                time.sleep(0.1)
        for path in (
            "/metrics",
            "/docs",
            "/docs/assets/swagger-ui-bundle.js",
            "/openapi.json",
            "/internal/dead-letters",
        ):
            assert httpx.get(public_url + path).status_code == 404, path
            assert httpx.get(internal_url + path).status_code == 200, path
        # A Host header naming the internal port does not help: the socket decides.
        assert httpx.get(public_url + "/metrics", headers={"Host": f"127.0.0.1:{internal}"}).status_code == 404
        assert httpx.get(public_url + "/v1/things").json() == {"ok": True}
        assert httpx.get(public_url + "/metricsx").status_code == 404  # not internal, just unknown
        assert httpx.get(internal_url + "/v1/things").status_code == 200
    finally:
        process.terminate()
        process.wait(30)
