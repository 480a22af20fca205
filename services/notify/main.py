"""Run the notify service: ``python -m services.notify.main``."""

from services.notify.api import create_app
from services.notify.config import NotifySettings
from shared.service import run_service


def main() -> None:
    run_service("notify", "The notify service: tells caregivers, referrers and providers.", NotifySettings, create_app)


if __name__ == "__main__":
    main()
