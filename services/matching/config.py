"""Settings of the matching service (env prefix ``MATCHING_``)."""

from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class MatchingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MATCHING_", extra="ignore")

    service_name: str = "matching"
    port: int = 8082
    max_proposals: int = 3
    # A proposed slot is held this long for the provider to accept, then released.
    reservation_hold_minutes: int = 60 * 24 * 3
