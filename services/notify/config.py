"""Settings of the notify service (env prefix ``NOTIFY_``)."""

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class NotifySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore")
    SECRETS = (*ServiceSettings.SECRETS, "link_secret")

    service_name: str = "notify"
    port: int = 8083
    sender: str = "Signaal naar Steun <noreply@signal-to-support.example.nl>"
    # Where the links in messages point (accept/decline, follow-up answers). Unset: this
    # service's own host and port, which is right for the embedded stack only.
    public_url: str | None = None
    # Signs those links. Set a secret in production: whoever knows it can answer for anyone.
    link_secret: SecretStr = SecretStr("dev-only-link-secret-change-me")
    # The public social-map search page, linked from the caregiver's overview of support.
    social_map_url: str | None = None
    # Confirmation mails of unconfirmed self-referrals are blanked after this long (the
    # submission itself is deleted by signals after a day).
    confirmation_keep_hours: float = 24
    link_ttl_days: int = 30

    # E-mail. Without an SMTP host, mail is written as .eml files into mailbox_dir (a file
    # drop); the embedded stack points this at its local mailbox server.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # STARTTLS is required unless turned off explicitly (the embedded stack's local mailbox
    # speaks plain SMTP on loopback): mail carries personal data.
    smtp_starttls: bool = True
    smtp_use_tls: bool = False  # implicit TLS (port 465) instead of STARTTLS
    # Per SMTP command. Shorter than the shutdown grace period, so a send in flight at a
    # SIGTERM usually finishes and is recorded; one cut off is sent again after its lease.
    smtp_timeout: float = 5.0
    # CA bundle to verify the relay's certificate with (a relay with a private CA).
    smtp_cert_bundle: Path | None = None
    mailbox_dir: Path = Path(".data/mailbox")

    # SMS through an HTTP gateway; unset: no SMS channel.
    sms_url: str | None = None
    sms_token: SecretStr | None = None
    sms_timeout: float = 10.0
    webhook_timeout: float = 10.0
    # Provider answers and the pages' forms are small.
    max_body_bytes: int = 16 * 1024
    # Development only: hosts (``host`` or ``host:port``) a partner webhook may reach over plain
    # http and on a local address. Empty: https to public addresses only (shared.webhooks).
    webhook_allow_http_hosts: list[str] = Field(default_factory=list)

    # Delivery (see services/notify/delivery.py). At most delivery_concurrency messages are
    # in flight, and as many SMTP connections are kept open for reuse.
    delivery_poll_seconds: float = 0.5
    delivery_concurrency: int = 10
    # A claimed message is leased for this long: if its sender dies, it is sent again (with
    # the same id) once the lease ran out. A send is cut off after half of it.
    delivery_lease_seconds: float = 120.0
    # Transient failures are retried with exponential backoff (the first retry after
    # delivery_backoff_seconds, doubling up to delivery_max_backoff_seconds) for this many
    # hours from the first attempt, which rides out a mail relay that is down for an hour;
    # then the message fails. A permanent error (a refused address) fails it at once.
    delivery_retry_window_hours: float = 24.0
    delivery_backoff_seconds: float = 1.0
    delivery_max_backoff_seconds: float = 600.0
    # Circuit breaker per channel (per host for webhooks): after this many consecutive
    # failures that say the channel itself is down or misconfigured, its messages are not
    # claimed (no attempts burned) until a cool-off passed; then one goes through as a probe.
    # The cool-off doubles after each failed probe, up to the maximum.
    delivery_breaker_failures: int = 5
    delivery_breaker_cooloff_seconds: float = 5.0
    delivery_breaker_max_cooloff_seconds: float = 300.0

    # A provider that has not answered a referral within this many working days gets a
    # reminder; after escalation_working_days (counted from the referral) the caregiver
    # consultant is asked to step in.
    response_working_days: int = 2
    escalation_working_days: int = 4
    timezone: str = "Europe/Amsterdam"
    # POM: ask the caregiver this many days after the proposals whether the support arrived.
    follow_up_days: int = 14
    deadline_poll_seconds: float = 30.0
    # Retention (README "Retention"): sent and failed messages and finished follow-ups are
    # deleted after the merge window of a case; a referral nothing happened to for a year.
    retention_notification_days: float = 180.0
    retention_referral_days: float = 365.0

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        if self.environment == "production":
            if not (self.public_url or "").startswith("https://"):
                problems.append(
                    "NOTIFY_PUBLIC_URL: set the https:// address of the public proxy; the links in e-mails point there"
                )
            if self.smtp_host and not (self.smtp_starttls or self.smtp_use_tls):
                problems.append(
                    "NOTIFY_SMTP_STARTTLS: mail to a relay must be encrypted in production "
                    "(STARTTLS, or NOTIFY_SMTP_USE_TLS for implicit TLS)"
                )
        return problems

    @model_validator(mode="after")
    def _lease_outlives_a_send(self) -> "NotifySettings":
        slowest = max(self.smtp_timeout, self.sms_timeout, self.webhook_timeout)
        if self.delivery_lease_seconds < 2 * slowest:
            raise ValueError(
                f"NOTIFY_DELIVERY_LEASE_SECONDS ({self.delivery_lease_seconds:g}) must be at least twice the "
                f"slowest channel timeout ({slowest:g} s): a lease that runs out during a send duplicates it"
            )
        return self
