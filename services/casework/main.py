"""Run the casework service: ``python -m services.casework.main``."""

from services.casework.api import create_app
from services.casework.config import CaseworkSettings
from shared.service import run_service


def main() -> None:
    run_service("casework", "The caregiver consultant's workbench.", CaseworkSettings, create_app)


if __name__ == "__main__":
    main()
