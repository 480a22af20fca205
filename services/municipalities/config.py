"""Settings of the municipalities service (env prefix ``MUNICIPALITIES_``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class MunicipalitiesSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MUNICIPALITIES_", extra="ignore")

    service_name: str = "municipalities"
    port: int = 8084
    # k-anonymity: every released group holds records of at least this many persons.
    k: int = Field(10, ge=2)
    # A record that has not reached k within this delay is generalised further, else suppressed.
    max_delay_seconds: float = Field(7 * 24 * 3600, gt=0)
    # How often waiting records are looked at and groups released (the release period).
    release_seconds: float = Field(3600, gt=0)
    # Inbox rows (consumed event ids) are kept this long for idempotency, then purged: longer
    # than the producers' outbox retention, which the embedded stack replays on a restart. The
    # event ids link to the pipeline's events about a person, which this store must not.
    retention_inbox_days: float = 2.0
    # How often an open Server-Sent Events stream looks for new releases, and sends a comment
    # to keep idle connections (and proxies) open.
    sse_poll_seconds: float = 0.5
    sse_keepalive_seconds: float = 15.0
    # Open streams per credential (each holds a connection and polls the database): past it 429.
    sse_max_streams_per_credential: int = Field(3, ge=1)
    # Webhook delivery: one worker polls, each delivery times out, failures back off
    # exponentially up to the cap and are retried until they succeed (nothing is skipped).
    webhook_poll_seconds: float = 1.0
    webhook_timeout_seconds: float = 5.0
    webhook_backoff_seconds: float = 1.0
    webhook_max_backoff_seconds: float = 600.0
    # Webhooks delivered at once (each webhook's own events stay in order).
    webhook_concurrency: int = Field(8, ge=1)
    # Development only: hosts (``host`` or ``host:port``) that a webhook may reach over plain
    # http and on a local address, e.g. a receiver on this machine. Empty: https to public
    # addresses only (see shared.webhooks).
    webhook_allow_http_hosts: list[str] = Field(default_factory=list)
