"""Settings of the matching service (env prefix ``MATCHING_``)."""

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class MatchingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MATCHING_", extra="ignore")
    SECRETS = (*ServiceSettings.SECRETS, "admin_token")

    service_name: str = "matching"
    port: int = 8082
    max_proposals: int = 3
    # A proposed slot is held this long for the provider to accept, then released.
    reservation_hold_minutes: int = 60 * 24 * 3
    reservation_sweep_seconds: float = 60.0
    # Retention (README "Retention"): released and expired holds are deleted after this long.
    retention_reservation_days: float = 90.0
    # Bearer token of the social-map admin API (not a partner key); unset: the API is closed.
    admin_token: SecretStr | None = None
    # A whole social map in one HSDS import.
    max_body_bytes: int = 16 * 1024 * 1024
