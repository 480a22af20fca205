"""The JSON form of HSDS: ``service_full`` and ``organization_full`` objects, one, a list, or an
API page with ``contents``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.matching.hsds.model import ImportIssue, ParseResult, Service
from services.matching.hsds.validate import Reader, finish


def parse_json(data: Any, file: str = "<json>") -> ParseResult:
    """Services from ``service_full``/``organization_full`` objects, a list of them, or a page."""
    reader = Reader(file)
    if isinstance(data, dict) and isinstance(data.get("contents"), list):
        data = data["contents"]
    services: list[Service] = []
    for i, item in enumerate(data if isinstance(data, list) else [data]):
        reader.record = str(item.get("id") or f"#{i}") if isinstance(item, dict) else f"#{i}"
        if not isinstance(item, dict):
            reader.issue(None, "", "", "expected an object; left out")
        elif isinstance(item.get("services"), list) and "status" not in item:
            services += _organization_full(reader, item)
        elif (service := reader.service(item, None, {})) is not None:
            services.append(service)
    return finish(reader, services)


def _organization_full(reader: Reader, d: dict[str, Any]) -> list[Service]:
    organization = reader.organization(d, "")
    if organization is None:
        return []
    org_locations = {str(loc.get("id")): loc for _, loc in reader.items(d, "", "locations")}
    services = []
    for i, item in enumerate(d["services"]):
        reader.record = str(item.get("id") or f"{organization.id}#services[{i}]") if isinstance(item, dict) else ""
        if not isinstance(item, dict):
            reader.issue(None, "", f"services[{i}]", "expected an object; left out")
        elif (service := reader.service(item, organization, org_locations)) is not None:
            services.append(service)
        reader.record = organization.id
    return services


def load_json(path: Path) -> ParseResult:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return ParseResult([], [ImportIssue(path.name, "", "", f"cannot read: {error}")])
    return parse_json(data, path.name)
