"""Settings shared by every service. Each service subclasses ``ServiceSettings`` with its own
env prefix (``SIGNALS_``, ``SCREENING_``, ...); Kafka settings are common (``KAFKA_``).

``STS_ENV=production`` (set by docker-compose.yml; the embedded default is development) makes
every service refuse to start while a declared secret is missing, is a development default
or is too short, or while its transport is not encrypted: ``production_problems`` lists what
is wrong, one line per variable, and ``shared.service.run_service`` exits with them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A production secret shorter than this is refused (e.g. `openssl rand -hex 32` gives 64).
MIN_SECRET_LENGTH = 24
# Values that only ever belong to the embedded default or the tests, whatever field holds them.
DEVELOPMENT_MARKERS = ("dev-only", "change-me", "dev-internal", "demo-")
ENCRYPTED_SSLMODES = ("require", "verify-ca", "verify-full")

# Where a running embedded stack (``make run``) says which databases it serves, so the
# command-line tools find them without any setting. ``STS_STACK_FILE`` points elsewhere.
STACK_FILE = Path(__file__).resolve().parent.parent / ".data" / "stack.json"


def running_stack() -> dict[str, Any] | None:
    """What the embedded stack that is running now wrote about itself, if one runs."""
    path = Path(os.environ.get("STS_STACK_FILE") or STACK_FILE)
    try:
        stack = json.loads(path.read_text())
        os.kill(int(stack["pid"]), 0)  # the stack that wrote it still runs
        return dict(stack)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running_stack_database(service: str) -> str | None:
    """The database URL of ``service`` in the embedded stack that is running now, if any."""
    try:
        url: str = (running_stack() or {})["databases"][service]
        return url
    except (KeyError, TypeError):
        return None


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    # Tansu (the embedded broker) lacks InitProducerId: keep these off there, on for real Kafka.
    idempotence: bool = False
    acks: Literal["all", "1", "0"] = "all"
    partitions: int = 6
    replication_factor: int = 1
    request_timeout_ms: int = 15_000
    # PLAINTEXT for the embedded broker; SASL_SSL with SCRAM-SHA-512 and one principal per
    # service in production (docker-compose.yml; ACLs from deploy/kafka_acls.py).
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # CA that signed the broker's certificate (unset: the system's trust store).
    ssl_cafile: Path | None = None


# Per credential per minute. Generous for real partners (a GP system posting in bursts, a
# status poller), low enough that one key cannot flood a service.
DEFAULT_RATE_LIMITS = {
    "ingest": 6000,
    "read_status": 6000,
    "erase_own": 120,
    "municipality_read": 600,
    "provider": 600,
    "admin": 60,
    "privacy_officer": 120,
}


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    service_name: str = "service"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    database_pool_size: int = 10
    # How long a request or consumer waits for a pooled connection before the database
    # counts as unavailable (an API answers 503 with Retry-After).
    database_acquire_timeout_seconds: float = 5.0
    host: str = "127.0.0.1"
    port: int = 8000
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"
    # A failing event is retried while the database answers, for at least this long and this
    # many attempts, then dead-lettered. Outages (database or broker away) are waited out
    # however long they last and never dead-letter anything.
    consumer_dead_letter_after_seconds: float = 300.0
    consumer_max_attempts: int = 4
    consumer_retry_backoff_seconds: float = 0.2
    consumer_max_backoff_seconds: float = 10.0
    # The most records one poll hands to one transaction and one offset commit.
    consumer_batch_size: int = 100
    # How long a fetch waits on the broker for records when there are none (aiokafka's
    # default). Kafka answers as soon as a record arrives; the embedded broker only after the
    # wait. Measured on 2 cores, embedded: 50 ms cut p95 ingest→notified at 4 signals/s from
    # 2.1 s to 1.3 s, but the idle stack then used 109 % of a core instead of 40 %.
    consumer_fetch_max_wait_ms: int = 500
    outbox_batch_size: int = 200
    outbox_poll_seconds: float = 1.0
    # Published outbox rows are kept this long, so they can be replayed onto a fresh broker.
    outbox_retention_hours: float = 24.0
    # The embedded broker keeps nothing across restarts: replay retained events on start.
    # Consumers are idempotent, so a replay only re-delivers what they already saw.
    outbox_replay_on_start: bool = False
    shutdown_grace_seconds: float = 10.0
    # Retention (shared/retention.py): how often the purge runs; how long consumed event ids
    # are kept (longer than any redelivery or replay: the outbox retention, Kafka's default 7
    # days); how long a replayed dead letter (its body holds the event's personal data) is kept.
    retention_check_seconds: float = 3600.0
    retention_inbox_days: float = 14.0
    retention_dead_letters_days: float = 30.0
    # Service-to-service calls (key requests, operator actions) carry this token; one value for
    # the whole deployment, never a partner's credential.
    internal_token: str = Field("dev-internal-token", validation_alias="STS_INTERNAL_TOKEN")
    # The key holder (the signals service): other services fetch caregivers' data keys there
    # (see shared.keys) and keep each in memory only this long.
    keys_url: str = Field("http://127.0.0.1:8080", validation_alias="STS_KEYS_URL")
    key_cache_seconds: float = 60.0
    # Abuse limits (shared/auth.py, shared/ratelimit.py): requests per minute per credential,
    # by the scope a request uses (a key's own rate_per_minute overrides it); key lookups are
    # cached this long, so a revocation takes effect within it.
    rate_limits: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    rate_limit_default: int = 600
    auth_cache_seconds: float = 5.0
    # Largest request body any endpoint accepts (413 past it, counted as it streams in).
    max_body_bytes: int = 64 * 1024
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)

    @model_validator(mode="after")
    def _running_stack(self) -> ServiceSettings:
        # Only when no database URL was given: an explicit setting always wins.
        if "database_url" not in self.model_fields_set and (found := running_stack_database(self.service_name)):
            self.database_url = found
        return self

    # One name for every service: production turns the checks below on.
    environment: Literal["development", "production"] = Field("development", validation_alias="STS_ENV")
    # /metrics, /docs, /openapi.json, /asyncapi and /internal/* are served on this second port
    # (bound to internal_host, default: host) when set. In production it must be set and the
    # public port no longer serves them; in development both ports (or the one) serve everything.
    internal_port: int | None = None
    internal_host: str | None = None

    # The fields that hold secrets: in production each must be set, must not be a development
    # value and must be long enough. A subclass adds its own: ``SECRETS = (*ServiceSettings.SECRETS, "x")``.
    SECRETS: ClassVar[tuple[str, ...]] = ("internal_token",)

    def env_name(self, field: str) -> str:
        """The environment variable a field is read from (for messages)."""
        alias = type(self).model_fields[field].validation_alias
        if isinstance(alias, str):
            return alias
        return f"{self.model_config.get('env_prefix', '')}{field}".upper()

    def production_problems(self) -> list[str]:
        """What keeps this configuration from running in production, one line per variable;
        empty when ``STS_ENV`` is not production or all is well."""
        if self.environment != "production":
            return []
        problems = [
            f"{self.env_name(name)}: {problem}"
            for name in self.SECRETS
            if (
                problem := _secret_problem(
                    getattr(self, name) if name in self.model_fields_set else None,
                    type(self).model_fields[name].default,
                )
            )
        ]
        url = urlsplit(self.database_url)
        sslmode = parse_qs(url.query).get("sslmode", [""])[-1]
        if sslmode not in ENCRYPTED_SSLMODES:
            problems.append(
                f"{self.env_name('database_url')}: connect with TLS: add ?sslmode=verify-full (or require) to the URL"
            )
        if self.kafka.security_protocol != "SASL_SSL":
            problems.append("KAFKA_SECURITY_PROTOCOL: must be SASL_SSL in production (authenticated, encrypted)")
        elif not (self.kafka.sasl_username and self.kafka.sasl_password):
            problems.append("KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD: set this service's Kafka principal")
        if self.internal_port is None:
            problems.append(
                f"{self.env_name('internal_port')}: set a port for /metrics and the API documentation, "
                "so the public port does not serve them"
            )
        return problems


def _secret_problem(value: Any, default: Any) -> str | None:
    plain = value.get_secret_value() if isinstance(value, SecretStr) else value
    default = default.get_secret_value() if isinstance(default, SecretStr) else default
    if not plain:
        return "not set; a secret is required in production"
    if plain == default or any(marker in str(plain).lower() for marker in DEVELOPMENT_MARKERS):
        return "has a development value; set a secret of your own (e.g. `openssl rand -hex 32`)"
    if len(str(plain)) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters; use a random secret (e.g. `openssl rand -hex 32`)"
    return None
