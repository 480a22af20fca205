"""Run the operators service (the operator console): ``python -m services.operators.main``."""

from services.operators.api import create_app
from services.operators.config import OperatorsSettings
from shared.service import run_service


def main() -> None:
    run_service(
        "operators",
        "The operator console: health, flow, backlogs and dead letters of every service.",
        OperatorsSettings,
        create_app,
    )


if __name__ == "__main__":
    main()
