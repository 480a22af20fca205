"""Run the screening service: ``python -m services.screening.main``."""

from services.screening.api import create_app
from services.screening.config import ScreeningSettings
from shared.service import run_service


def main() -> None:
    run_service("screening", "The screening service: judges the caregiver's burden.", ScreeningSettings, create_app)


if __name__ == "__main__":
    main()
