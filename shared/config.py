"""Settings shared by every service. Each service subclasses ``ServiceSettings`` with its own
env prefix (``SIGNALS_``, ``SCREENING_``, ...); Kafka settings are common (``KAFKA_``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Where a running embedded stack (``make run``) says which databases it serves, so the
# command-line tools find them without any setting. ``STS_STACK_FILE`` points elsewhere.
STACK_FILE = Path(__file__).resolve().parent.parent / ".data" / "stack.json"


def running_stack_database(service: str) -> str | None:
    """The database URL of ``service`` in the embedded stack that is running now, if any."""
    path = Path(os.environ.get("STS_STACK_FILE") or STACK_FILE)
    try:
        stack = json.loads(path.read_text())
        os.kill(int(stack["pid"]), 0)  # the stack that wrote it still runs
        return stack["databases"][service]
    except (OSError, ValueError, KeyError, TypeError):
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
    # Service-to-service calls (key requests, operator actions) carry this token; one value for
    # the whole deployment, never a partner's credential.
    internal_token: str = Field("dev-internal-token", validation_alias="STS_INTERNAL_TOKEN")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)

    @model_validator(mode="after")
    def _running_stack(self) -> ServiceSettings:
        # Only when no database URL was given: an explicit setting always wins.
        if "database_url" not in self.model_fields_set and (found := running_stack_database(self.service_name)):
            self.database_url = found
        return self
