"""Settings of the operators service (env prefix ``OPERATORS_``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings

DEFAULT_SERVICES = {
    "signals": "http://127.0.0.1:8080",
    "screening": "http://127.0.0.1:8081",
    "matching": "http://127.0.0.1:8082",
    "notify": "http://127.0.0.1:8083",
    "municipalities": "http://127.0.0.1:8084",
}


class OperatorsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="OPERATORS_", extra="ignore")

    service_name: str = "operators"
    port: int = 8086
    # The services the console watches (name → base URL), as JSON in OPERATORS_SERVICES.
    services: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_SERVICES))
    # Where operators reach the console: the sign-in links the CLI prints start with it.
    public_url: str = "http://127.0.0.1:8086"
    # How often every service's /healthz and /metrics are read, and how much history the
    # charts keep (in samples).
    poll_seconds: float = Field(2.0, gt=0)
    history_samples: int = Field(300, ge=2)
    scrape_timeout_seconds: float = Field(5.0, gt=0)
    session_hours: float = Field(12.0, gt=0)
    sign_in_link_minutes: float = Field(60.0, gt=0)
