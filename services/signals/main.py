"""Run the signals service: ``python -m services.signals.main``."""

from services.signals.api import create_app
from services.signals.config import SignalsSettings
from shared.service import run_service


def main() -> None:
    run_service(
        "signals", "The signals ingest API: partner organisations post signals here.", SignalsSettings, create_app
    )


if __name__ == "__main__":
    main()
