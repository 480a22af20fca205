"""Settings of the signals service (env prefix ``SIGNALS_``)."""

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class SignalsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SIGNALS_", extra="ignore")

    service_name: str = "signals"
    port: int = 8080
    max_body_bytes: int = 64 * 1024
    # Key for caregiver pseudonyms (case merging, Kafka keys). Set a secret in production.
    pseudonym_key: SecretStr = SecretStr("dev-only-pseudonym-key-change-me")
    # Master secret of the municipalities' stream pseudonyms: each municipality's key is
    # HMAC(master, code). Set a secret in production; changing it re-keys every stream.
    municipal_master_key: SecretStr = SecretStr("dev-only-municipal-master-key-change-me")
    # How often an open Server-Sent Events stream looks for new events, and sends a comment
    # to keep idle connections (and proxies) open.
    sse_poll_seconds: float = 0.5
    sse_keepalive_seconds: float = 15.0
    # Webhook delivery: one worker polls, each delivery times out, failures back off
    # exponentially up to the cap and are retried until they succeed (nothing is skipped).
    webhook_poll_seconds: float = 1.0
    webhook_timeout_seconds: float = 5.0
    webhook_backoff_seconds: float = 1.0
    webhook_max_backoff_seconds: float = 600.0
    # Webhook URLs must be https unless this is set (local development and tests only).
    webhook_allow_http: bool = False
