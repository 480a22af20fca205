"""Settings shared by every service. Each service subclasses ``ServiceSettings`` with its own
env prefix (``SIGNALS_``, ``SCREENING_``, ...); Kafka settings are common (``KAFKA_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    # Tansu (the embedded broker) lacks InitProducerId: keep these off there, on for real Kafka.
    idempotence: bool = False
    acks: Literal["all", "1", "0"] = "all"
    partitions: int = 6
    replication_factor: int = 1
    request_timeout_ms: int = 15_000


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
    # Parallel lanes per consumer group; each partition is still handled in order.
    consumer_workers: int = 3
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
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
