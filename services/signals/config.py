"""Settings of the signals service (env prefix ``SIGNALS_``)."""

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class SignalsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SIGNALS_", extra="ignore")
    SECRETS = (*ServiceSettings.SECRETS, "pseudonym_key")

    service_name: str = "signals"
    port: int = 8080
    # Key for caregiver pseudonyms (case merging, Kafka keys). Set a secret in production.
    pseudonym_key: SecretStr = SecretStr("dev-only-pseudonym-key-change-me")
    # The master keys that wrap caregivers' data keys: "id:base64(32 bytes)", comma-separated,
    # the current one first (older ones still unwrap until `keys rotate` re-wrapped all).
    # Dev-only default; set secrets in production.
    encryption_master_keys: SecretStr = SecretStr("dev:ZGV2LW9ubHktbWFzdGVyLWtleS1jaGFuZ2UtbWUhISE=")
    # Retention (README "Retention"): a signal nothing happened to for a year is deleted, with
    # its timeline; an Idempotency-Key is only needed while a partner may retry.
    retention_signal_days: float = 365.0
    retention_idempotency_days: float = 7.0
