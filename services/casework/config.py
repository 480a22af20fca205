"""Settings of the casework service (env prefix ``CASEWORK_``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class CaseworkSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CASEWORK_", extra="ignore")

    service_name: str = "casework"
    port: int = 8085
    # Where the pages are reached from a browser (sign-in links printed by the CLI).
    public_url: str = "http://127.0.0.1:8085"
    # The operator-level default group: a municipality with no consultant of its own and in no
    # configured region (``cli set-region``) lands in this region's fallback queue.
    default_region: str = "Regionaal vangnet"
    # A crisis must be picked up (a contact attempt recorded) within this many hours, else
    # it is escalated to the back-up: the region's fallback queue.
    crisis_deadline_hours: float = Field(4.0, gt=0)
    # A referral still unanswered this many days after it was made needs a person.
    unanswered_referral_days: float = Field(4.0, gt=0)
    # Times on the pages are shown in this zone.
    timezone: str = "Europe/Amsterdam"
    # Sign-in links work once, for this long; a session lasts this long.
    sign_in_ttl_hours: float = Field(24.0, gt=0)
    session_ttl_hours: float = Field(12.0, gt=0)
    # The session cookie is sent over https only, unless this is set (local development).
    insecure_cookies: bool = False
