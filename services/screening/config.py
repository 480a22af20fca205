"""Settings of the screening service (env prefix ``SCREENING_``)."""

from pydantic_settings import SettingsConfigDict

from shared.config import ServiceSettings


class ScreeningSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SCREENING_", extra="ignore")

    service_name: str = "screening"
    port: int = 8081
    # Signals about the same caregiver within this window join one case.
    case_merge_window_days: int = 180
    rescreen_check_seconds: float = 60.0
    # Retention (README "Retention"): a case no signal joined for a year (twice the merge
    # window, past every re-screen) is closed for good and deleted with its screenings.
    retention_case_days: float = 365.0
