"""Settings of the notify service (env prefix ``NOTIFY_``)."""

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class NotifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")

    service_name: str = "notify"
    port: int = 8083
    sender: str = "Signaal naar Steun <noreply@signal-to-support.example.nl>"
    # Where the links in messages point (accept/decline, follow-up answers). Unset: this
    # service's own host and port, which is right for the embedded stack only.
    public_url: str | None = None
    # Signs those links. Set a secret in production: whoever knows it can answer for anyone.
    link_secret: SecretStr = SecretStr("dev-only-link-secret-change-me")
    link_ttl_days: int = 30

    # E-mail. Without an SMTP host, mail is written as .eml files into mailbox_dir (a file
    # drop); the embedded stack points this at its local mailbox server.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_use_tls: bool = False  # implicit TLS (port 465), as opposed to STARTTLS
    smtp_timeout: float = 30.0
    # CA bundle to verify the relay's certificate with (a relay with a private CA).
    smtp_cert_bundle: Path | None = None
    mailbox_dir: Path = Path(".data/mailbox")

    # SMS through an HTTP gateway; unset: no SMS channel.
    sms_url: str | None = None
    sms_token: SecretStr | None = None
    sms_timeout: float = 10.0
    webhook_timeout: float = 10.0

    delivery_poll_seconds: float = 0.5
    delivery_max_attempts: int = 5
    delivery_backoff_seconds: float = 1.0
    delivery_concurrency: int = 10

    # A provider that has not answered a referral within this many working days gets a
    # reminder; after escalation_working_days (counted from the referral) the caregiver
    # consultant is asked to step in.
    response_working_days: int = 2
    escalation_working_days: int = 4
    timezone: str = "Europe/Amsterdam"
    # POM: ask the caregiver this many days after the proposals whether the support arrived.
    follow_up_days: int = 14
    deadline_poll_seconds: float = 30.0
