"""Run the municipalities service: ``python -m services.municipalities.main``."""

from services.municipalities.api import create_app
from services.municipalities.config import MunicipalitiesSettings
from shared.service import run_service


def main() -> None:
    run_service(
        "municipalities",
        "The municipalities service: anonymous, k-anonymous data for municipalities.",
        MunicipalitiesSettings,
        create_app,
    )


if __name__ == "__main__":
    main()
