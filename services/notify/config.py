"""Settings of the notify service (env prefix ``NOTIFY_``)."""

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class NotifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    service_name: str = "notify"
    port: int = 8083
    # Local sink: every message is written here as an .eml file and shown at /mailbox.
    mailbox_dir: Path = Path(".data/mailbox")
    sender: str = "Signaal naar Steun <noreply@signal-to-support.example.nl>"
    delivery_poll_seconds: float = 0.5
    delivery_max_attempts: int = 5
    delivery_backoff_seconds: float = 1.0
