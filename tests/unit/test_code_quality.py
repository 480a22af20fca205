"""Lint and types, as part of ``make test``: ruff's lint and format check over the whole
repository, and mypy (strict on ``shared/`` and on every service's ``domain`` and ``service``
module, the default checks elsewhere). The rule sets live in pyproject.toml only; each check
runs as its own command from the repository root, as a developer would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CHECKS = {
    "ruff-lint": ["ruff", "check", "."],
    "ruff-format": ["ruff", "format", "--check", "."],
    "mypy": ["mypy"],
}


@pytest.mark.parametrize("name", CHECKS)
def test_the_code_passes(name: str) -> None:
    command = [sys.executable, "-m", *CHECKS[name]]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (
        f"`python -m {' '.join(CHECKS[name])}` failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
    )
