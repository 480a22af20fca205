"""The tabular form of HSDS: a directory with ``datapackage.json`` and the CSV files it names.
Rows are linked by id into ``service_full`` objects and read like JSON; issues name the CSV file
and row. ``TABLES`` is also what the writer writes."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from services.matching.hsds.model import ImportIssue, ParseResult, Service
from services.matching.hsds.validate import Reader, finish

# resource name -> (file name, columns written); names and columns are the specification's.
TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "organization": ("organizations.csv", ("id", "name", "description", "email", "website")),
    "service": (
        "services.csv",
        (
            "id",
            "organization_id",
            "name",
            "description",
            "url",
            "email",
            "status",
            "application_process",
            "fees_description",
            "eligibility_description",
            "minimum_age",
            "maximum_age",
            "assured_date",
        ),
    ),
    "location": ("locations.csv", ("id", "location_type", "organization_id", "name", "latitude", "longitude")),
    "address": (
        "addresses.csv",
        ("id", "location_id", "address_1", "city", "state_province", "postal_code", "country", "address_type"),
    ),
    "service_at_location": ("service_at_location.csv", ("id", "service_id", "location_id", "description")),
    "service_area": ("service_areas.csv", ("id", "service_id", "name", "extent", "extent_type", "uri")),
    "language": ("languages.csv", ("id", "service_id", "name", "code")),
    "schedule": ("schedules.csv", ("id", "service_id", "freq", "byday", "opens_at", "closes_at", "description")),
    "contact": ("contacts.csv", ("id", "service_id", "name", "title", "email")),
    "phone": ("phones.csv", ("id", "contact_id", "number")),
    "taxonomy_term": ("taxonomy_terms.csv", ("id", "code", "name", "description", "taxonomy")),
    "attribute": ("attributes.csv", ("id", "link_id", "taxonomy_term_id", "link_entity", "value")),
    "unit": ("units.csv", ("id", "name")),
    "service_capacity": (
        "service_capacity.csv",
        ("id", "service_id", "unit_id", "available", "maximum", "description", "updated"),
    ),
}


def load_datapackage(directory: Path) -> ParseResult:
    """Services from a tabular datapackage: rows are linked by id into ``service_full``
    objects, then read like JSON; issues name the CSV file and row."""
    origins: dict[int, tuple[str, str]] = {}
    reader = Reader(directory.name, origins)
    try:
        package = json.loads((directory / "datapackage.json").read_text(encoding="utf-8"))
        paths = {r["name"]: r["path"] for r in package["resources"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        return ParseResult([], [ImportIssue("datapackage.json", "", "", f"cannot read: {error}")])
    tables: dict[str, list[dict[str, Any]]] = {}
    for name in TABLES:
        path = paths.get(name)
        if path is None or not (directory / path).is_file():
            if name in ("organization", "service"):
                reader.issues.append(ImportIssue("datapackage.json", "", name, "resource missing"))
            tables[name] = []
            continue
        with (directory / path).open(encoding="utf-8-sig", newline="") as f:
            rows = [{k: (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(f)]
        for i, row in enumerate(rows, start=2):
            origins[id(row)] = (path, f"row {i}")
        tables[name] = rows

    def index(name: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for row in tables[name]:
            if row.get("id") in found:
                reader.issue(row, "", "id", f"duplicate {name} id; row left out")
            elif row.get("id"):
                found[row["id"]] = row
        return found

    organizations, services, locations = index("organization"), index("service"), index("location")
    terms, units, contacts = index("taxonomy_term"), index("unit"), index("contact")

    def attach(table: str, key: str, targets: dict[str, dict[str, Any]], into: str, what: str) -> None:
        """Append each row of ``table`` to the list ``into`` of the row its ``key`` names."""
        for row in tables[table]:
            target = targets.get(row.get(key) or "")
            if target is None:
                # Rows linked only to objects matching does not read (a phone of a location) are fine.
                if row.get(key) is not None:
                    reader.issue(row, "", key, f"unknown {what} {row.get(key)!r}; row left out")
            else:
                target.setdefault(into, []).append(row)

    def resolve(table: str, key: str, targets: dict[str, dict[str, Any]], into: str, what: str) -> None:
        """Put the row its ``key`` names under ``into``; a row naming an unknown one is left out."""
        kept = []
        for row in tables[table]:
            if (target := targets.get(row.get(key) or "")) is not None:
                row[into] = target
                kept.append(row)
            else:
                reader.issue(row, "", key, f"unknown {what} {row.get(key)!r}; row left out")
        tables[table] = kept

    for location in locations.values():
        if location.get("organization_id") and location["organization_id"] not in organizations:
            reader.issue(
                location, "", "organization_id", f"unknown organization {location['organization_id']!r}; value left out"
            )
            location["organization_id"] = None
    resolve("service_at_location", "location_id", locations, "location", "location")
    resolve("service_capacity", "unit_id", units, "unit", "unit")
    # Attributes may describe any object; matching reads only those of services.
    tables["attribute"] = [r for r in tables["attribute"] if r.get("link_entity") == "service"]
    resolve("attribute", "taxonomy_term_id", terms, "taxonomy_term", "taxonomy term")
    attach("address", "location_id", locations, "addresses", "location")
    attach("phone", "contact_id", contacts, "phones", "contact")
    for table, into in (
        ("service_at_location", "service_at_locations"),
        ("service_area", "service_areas"),
        ("language", "languages"),
        ("schedule", "schedules"),
        ("contact", "contacts"),
        ("service_capacity", "capacities"),
    ):
        attach(table, "service_id", services, into, "service")
    attach("attribute", "link_id", services, "attributes", "service")

    parsed: list[Service] = []
    for row in services.values():
        reader.record = row["id"]
        organization = organizations.get(row.get("organization_id") or "")
        if organization is None:
            reader.issue(
                row, "", "organization_id", f"unknown organization {row.get('organization_id')!r}; service left out"
            )
            continue
        org = reader.organization(organization, "")
        if org is not None and (service := reader.service(row, org, {})) is not None:
            parsed.append(service)
    return finish(reader, parsed)
