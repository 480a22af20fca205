"""The Compose Specification JSON schema, for validating docker-compose.yml without Docker and
without a network.

The schema is vendored in ``compose_spec/compose-spec.json``: ``schema/compose-spec.json`` of
https://github.com/compose-spec/compose-spec at commit
170098ba07d9f53c383a41bfd4c5166b0a4529a6 (2026-06-23), Apache License 2.0 (``compose_spec/LICENSE``
and ``compose_spec/NOTICE`` beside it). To update it, copy that file from a newer commit and
change the commit named here.

``COMPOSE_SPEC_SCHEMA=/path/to/compose-spec.json`` uses another copy instead (for a check against
a newer specification).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

VENDORED = Path(__file__).resolve().parent / "compose_spec" / "compose-spec.json"
SOURCE = "compose-spec/compose-spec@170098ba07d9f53c383a41bfd4c5166b0a4529a6:schema/compose-spec.json"
OVERRIDE_ENV = "COMPOSE_SPEC_SCHEMA"


def load() -> tuple[dict[str, Any], str]:
    """The schema and a description of where it came from."""
    override = os.environ.get(OVERRIDE_ENV)
    path = Path(override) if override else VENDORED
    return json.loads(path.read_text()), str(path) if override else SOURCE
