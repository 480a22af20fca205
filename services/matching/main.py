"""Run the matching service: ``python -m services.matching.main``."""

from services.matching.api import create_app
from services.matching.config import MatchingSettings
from shared.service import run_service


def main() -> None:
    run_service(
        "matching", "The matching service: proposes local support from the social map.", MatchingSettings, create_app
    )


if __name__ == "__main__":
    main()
