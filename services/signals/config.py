"""Settings of the signals service (env prefix ``SIGNALS_``)."""

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class SignalsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SIGNALS_", extra="ignore")

    service_name: str = "signals"
    port: int = 8080
    # Key for caregiver pseudonyms (case merging, Kafka keys). Set a secret in production.
    pseudonym_key: SecretStr = SecretStr("dev-only-pseudonym-key-change-me")
