"""Settings of the signals service (env prefix ``SIGNALS_``)."""

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class SignalsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SIGNALS_", extra="ignore")
    SECRETS = (*ServiceSettings.SECRETS, "pseudonym_key", "encryption_master_keys", "page_secret")

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
    # Front doors (pages): where the service is reached from outside (links in e-mails), and
    # the key that signs session cookies and caregiver status links. Set a secret in production.
    public_url: str | None = None
    page_secret: SecretStr = SecretStr("dev-only-page-secret-change-me")
    session_hours: float = 8
    # The public social-map search page, linked from the caregiver's status page.
    social_map_url: str | None = None
    # Self-referral: submissions per e-mail address or client address per hour, and how long
    # an unconfirmed submission (and its personal data) is kept.
    self_referral_per_hour: int = 5
    self_referral_keep_hours: float = 24
    self_referral_purge_seconds: float = 600
