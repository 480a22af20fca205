"""Writing the social map back as HSDS: ``service_full`` JSON and the tabular datapackage.
Reading what was written gives the same records."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from services.matching.hsds.datapackage import TABLES
from services.matching.hsds.model import TOOI_MUNICIPALITY, Location, Service, province


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v != [] and v != {}}


def _iso(value: date | time | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _location_json(loc: Location, municipality: str | None = None) -> dict[str, Any]:
    return _compact(
        {
            "id": loc.id,
            "location_type": loc.location_type,
            "organization_id": loc.organization_id,
            "name": loc.name,
            "latitude": loc.latitude,
            "longitude": loc.longitude,
            "addresses": [_compact({**vars(a), "state_province": province(a, municipality)}) for a in loc.addresses],
        }
    )


def to_service_full(s: Service) -> dict[str, Any]:
    """The service as an HSDS ``service_full`` object (only the fields this project reads)."""
    o = s.organization
    return _compact(
        {
            "id": s.id,
            "name": s.name,
            "description": s.description,
            "url": s.url,
            "email": s.email,
            "status": s.status,
            "application_process": s.application_process,
            "fees_description": s.fees_description,
            "eligibility_description": s.eligibility_description,
            "minimum_age": s.minimum_age,
            "maximum_age": s.maximum_age,
            "assured_date": _iso(s.assured_date),
            "organization": _compact(
                {"id": o.id, "name": o.name, "description": o.description, "email": o.email, "website": o.website}
            ),
            "service_at_locations": [
                _compact(
                    {
                        "id": sal.id,
                        "description": sal.description,
                        "location": _location_json(sal.location, next((a.municipality_code for a in s.areas), None)),
                    }
                )
                for sal in s.locations
            ],
            "service_areas": [
                _compact(
                    {
                        "id": a.id,
                        "name": a.name,
                        "extent": a.extent,
                        "extent_type": a.extent_type,
                        "uri": f"{TOOI_MUNICIPALITY}{a.municipality_code.lower()}",
                    }
                )
                for a in s.areas
            ],
            "languages": [_compact(vars(lang)) for lang in s.languages],
            "schedules": [
                _compact({**vars(sch), "opens_at": _iso(sch.opens_at), "closes_at": _iso(sch.closes_at)})
                for sch in s.schedules
            ],
            "contacts": [_compact({**vars(c), "phones": [vars(p) for p in c.phones]}) for c in s.contacts],
            "capacities": [
                _compact(
                    {
                        "id": c.id,
                        "unit": {"id": c.unit_id, "name": c.unit},
                        "available": c.available,
                        "maximum": c.maximum,
                        "description": c.description,
                        "updated": _iso(c.updated),
                    }
                )
                for c in s.capacities
            ],
            "attributes": [
                _compact(
                    {
                        "id": a.id,
                        "link_entity": "service",
                        "link_id": s.id,
                        "value": a.value,
                        "taxonomy_term": _compact(vars(a.term)),
                    }
                )
                for a in s.attributes
            ],
        }
    )


def _rows(services: list[Service]) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, dict[tuple[str, ...], dict[str, Any]]] = defaultdict(dict)

    def add(table: str, row: dict[str, Any], *key: str) -> None:
        # Shared objects (an organization, a location, a term) are written once.
        rows[table].setdefault(key or (row["id"],), row)

    for s in services:
        full = to_service_full(s)
        add("organization", full["organization"])
        add("service", {**full, "organization_id": s.organization.id})
        for sal in full.get("service_at_locations", []):
            loc = sal["location"]
            add("location", loc)
            for a in loc.get("addresses", []):
                add("address", {**a, "location_id": loc["id"]})
            add("service_at_location", {**sal, "service_id": s.id, "location_id": loc["id"]})
        for table, key in (
            ("service_area", "service_areas"),
            ("language", "languages"),
            ("schedule", "schedules"),
            ("contact", "contacts"),
        ):
            for item in full.get(key, []):
                add(table, {**item, "service_id": s.id}, s.id, item["id"])
        for contact in full.get("contacts", []):
            for p in contact.get("phones", []):
                add("phone", {**p, "contact_id": contact["id"]}, contact["id"], p["id"])
        for a in full.get("attributes", []):
            add("taxonomy_term", a["taxonomy_term"])
            add("attribute", {**a, "taxonomy_term_id": a["taxonomy_term"]["id"]}, s.id, a["id"])
        for c in full.get("capacities", []):
            add("unit", c["unit"])
            add("service_capacity", {**c, "service_id": s.id, "unit_id": c["unit"]["id"]})
    return {table: list(found.values()) for table, found in rows.items()}


def write_datapackage(services: list[Service], directory: Path) -> None:
    """Write the services as an HSDS tabular datapackage (CSV files and datapackage.json)."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = _rows(services)
    resources = []
    for name, (path, columns) in TABLES.items():
        with (directory / path).open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows.get(name, []))
        resources.append(
            {
                "name": name,
                "path": path,
                "profile": "tabular-data-resource",
                "schema": {"fields": [{"name": c, "type": "string"} for c in columns]},
            }
        )
    package = {"name": "social-map", "profile": "tabular-data-package", "resources": resources}
    (directory / "datapackage.json").write_text(json.dumps(package, indent=2) + "\n", encoding="utf-8")
