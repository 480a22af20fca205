"""The social map's export validates against the official HSDS 3 compiled ``service``
schema (vendored in tests/fixtures/hsds/schema from openreferral/specification, CC BY-SA
4.0), with no network at test time."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from services.matching import hsds

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hsds"
DEMO = Path(__file__).parent.parent.parent / "services" / "matching" / "demo" / "social_map.json"


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads((FIXTURES / "schema" / "service.json").read_text(encoding="utf-8"))
    return jsonschema.validators.validator_for(schema)(schema, format_checker=jsonschema.FormatChecker())


def test_every_exported_demo_service_validates_against_the_official_hsds_3_schema() -> None:
    loaded = hsds.load(DEMO)
    assert loaded.services and not loaded.issues
    validator = _validator()
    failures = {
        s.name: [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(hsds.to_service_full(s))
        ]
        for s in loaded.services
    }
    assert {name: errors for name, errors in failures.items() if errors} == {}


def test_every_address_gets_the_province_of_its_municipality() -> None:
    exported = [hsds.to_service_full(s) for s in hsds.load(DEMO).services]
    provinces = {
        (a["city"], a["state_province"])
        for s in exported
        for sal in s.get("service_at_locations", [])
        for a in sal["location"].get("addresses", [])
    }
    assert ("Leusden", "Utrecht") in provinces and ("Achterveld", "Utrecht") in provinces
    assert all(province for _, province in provinces)
