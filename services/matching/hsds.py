"""Read and write the social map in Open Referral HSDS 3.x.

Reads ``service_full`` and ``organization_full`` JSON (one object, a list, or an API page with
``contents``) and the tabular form (a directory with ``datapackage.json`` and the CSV files it
names). Every problem is reported as an ``ImportIssue`` and the rest of the file is still read:
a bad value is left out, and a record without what identifies it or decides eligibility (id,
name, status, organization, ages) is left out whole. Writes ``service_full`` JSON and the
tabular form back; reading what was written gives the same records.

HSDS has no structured administrative area, so a Dutch social map follows two conventions:

- a ``service_area`` names its municipality by ``uri``, the government's TOOI identifier
  ``https://identifier.overheid.nl/tooi/id/gemeente/gm0327``;
- an area limited to one PC4 postcode area has ``extent_type`` ``text`` and ``extent`` ``3831``.

Matching terms are ``attributes`` whose ``taxonomy_term`` belongs to the project taxonomy
(``services.matching.taxonomy``)."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from services.matching.pc4 import PC4_CENTROIDS, pc4_of
from services.matching.taxonomy import TAXONOMY, TERMS
from shared import municipalities
from shared.fields import EMAIL_PATTERN

STATUSES = ("active", "inactive", "defunct", "temporarily closed")
TOOI_MUNICIPALITY = "https://identifier.overheid.nl/tooi/id/gemeente/"
_MUNICIPALITY_URI = re.compile(r"^https?://identifier\.overheid\.nl/tooi/id/gemeente/gm(\d{4})$", re.I)
_PC4 = re.compile(r"^\d{4}$")
_EMAIL = EMAIL_PATTERN  # one address: a contact e-mail reaches a To header
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


# --- records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportIssue:
    file: str
    record: str  # the record's id, or for CSV the row ("row 2": the header is row 1)
    field: str
    message: str


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    description: str | None = None
    email: str | None = None
    website: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Address:
    id: str
    address_1: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: str | None = None
    address_type: str | None = None
    state_province: str | None = None


@dataclass(frozen=True)
class Location:
    id: str
    name: str | None = None
    location_type: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    organization_id: str | None = None
    addresses: tuple[Address, ...] = ()


@dataclass(frozen=True)
class ServiceAtLocation:
    id: str
    location: Location
    description: str | None = None


@dataclass(frozen=True)
class ServiceArea:
    id: str
    municipality_code: str
    pc4: str | None = None
    name: str | None = None
    extent: str | None = None
    extent_type: str | None = None


@dataclass(frozen=True)
class Language:
    id: str
    code: str
    name: str | None = None


@dataclass(frozen=True)
class Schedule:
    id: str
    freq: str | None = None
    byday: str | None = None
    opens_at: time | None = None
    closes_at: time | None = None
    description: str | None = None


@dataclass(frozen=True)
class Phone:
    id: str
    number: str


@dataclass(frozen=True)
class Contact:
    id: str
    name: str | None = None
    title: str | None = None
    email: str | None = None
    phones: tuple[Phone, ...] = ()


@dataclass(frozen=True)
class TaxonomyTerm:
    id: str
    name: str
    code: str | None = None
    taxonomy: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Attribute:
    id: str
    term: TaxonomyTerm
    value: str | None = None


@dataclass(frozen=True)
class Capacity:
    id: str
    unit_id: str
    unit: str
    available: int
    updated: datetime
    maximum: int | None = None
    description: str | None = None


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    status: str
    organization: Organization
    description: str | None = None
    eligibility_description: str | None = None
    minimum_age: int | None = None
    maximum_age: int | None = None
    application_process: str | None = None
    fees_description: str | None = None
    assured_date: date | None = None
    email: str | None = None
    url: str | None = None
    locations: tuple[ServiceAtLocation, ...] = ()
    areas: tuple[ServiceArea, ...] = ()
    languages: tuple[Language, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    contacts: tuple[Contact, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    capacities: tuple[Capacity, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def term_codes(self) -> frozenset[str]:
        """Codes of the project taxonomy attached to this service."""
        return frozenset(
            a.term.code for a in self.attributes if a.term.taxonomy == TAXONOMY and a.term.code in TERMS
        )


@dataclass
class ParseResult:
    services: list[Service]
    issues: list[ImportIssue]


# --- value conversion ------------------------------------------------------------------

Convert = Callable[[Any], Any]


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {type(value).__name__}")
    return value


def _code(value: Any) -> str:
    """Text that identifies something: surrounding spaces are noise there, not content."""
    return _text(value).strip()


def _number(low: float, high: float) -> Convert:
    def convert(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"expected a number, got {type(value).__name__}")
        number = float(value)  # ValueError for text that is not a number
        if not low <= number <= high:
            raise ValueError(f"{value} is outside {low:g}..{high:g}")
        return number
    return convert


def _integer(low: int, high: int) -> Convert:
    def convert(value: Any) -> int:
        number = _number(low, high)(value)
        if number != int(number):
            raise ValueError(f"{value} is not a whole number")
        return int(number)
    return convert


def _one_of(*allowed: str) -> Convert:
    def convert(value: Any) -> str:
        text = _code(value)
        if text not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(allowed)}")
        return text
    return convert


def _matching(pattern: re.Pattern[str], what: str) -> Convert:
    def convert(value: Any) -> str:
        text = _code(value)
        if not pattern.match(text):
            raise ValueError(f"{text!r} is not {what}")
        return text
    return convert


def _date(value: Any) -> date:
    return date.fromisoformat(_code(value))


def _datetime(value: Any) -> datetime:
    parsed = datetime.fromisoformat(_code(value))
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return parsed


def _time(value: Any) -> time:
    parsed = time.fromisoformat(_code(value))
    if parsed.tzinfo is not None:
        # HSDS gives the zone once, in the schedule's timezone field.
        raise ValueError(f"{value!r} has a time zone")
    return parsed


def _url(value: Any) -> str:
    text = _code(value)
    if not text.lower().startswith(("http://", "https://")):
        raise ValueError(f"{text!r} is not an http(s) URL")
    return text


_email = _matching(_EMAIL, "an e-mail address")


def _language(value: Any) -> str:
    return _matching(_LANGUAGE, "an ISO 639 language code")(_code(value).lower())


def _municipality(value: Any) -> str:
    found = _MUNICIPALITY_URI.match(_code(value))
    if not found:
        raise ValueError(f"{value!r} is not a municipality identifier ({TOOI_MUNICIPALITY}gmNNNN)")
    return f"GM{found.group(1)}"


# --- reading ---------------------------------------------------------------------------


class _Reader:
    """Validates HSDS objects into records and collects the issues.

    Objects that came from a CSV row are registered in ``origins`` so their issues name the
    file and row; for JSON, issues name the record being read and the path inside it."""

    def __init__(self, file: str, origins: dict[int, tuple[str, str]] | None = None) -> None:
        self.file = file
        self.origins = origins if origins is not None else {}
        self.issues: list[ImportIssue] = []
        self.record = ""

    def issue(self, obj: Any, path: str, key: str, message: str) -> None:
        if id(obj) in self.origins:
            file, record = self.origins[id(obj)]
            self.issues.append(ImportIssue(file, record, key, message))
        else:
            where = f"{path}.{key}" if path and key else path or key
            self.issues.append(ImportIssue(self.file, self.record, where, message))

    def get(self, obj: dict[str, Any], path: str, key: str, convert: Convert = _text, *,
            required: bool = False, drops: str = "value") -> Any:
        value = obj.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.issue(obj, path, key, f"missing; {drops} left out")
            return None
        try:
            return convert(value)
        except (TypeError, ValueError) as error:
            self.issue(obj, path, key, f"{error}; {drops} left out")
            return None

    def items(self, obj: dict[str, Any], path: str, key: str) -> Iterator[tuple[str, dict[str, Any]]]:
        values = obj.get(key)
        if values is None:
            return
        if not isinstance(values, list):
            self.issue(obj, path, key, "expected a list; left out")
            return
        for i, item in enumerate(values):
            item_path = f"{path}.{key}[{i}]" if path else f"{key}[{i}]"
            if isinstance(item, dict):
                yield item_path, item
            else:
                self.issue(obj, item_path, "", "expected an object; left out")

    # -- objects --

    def organization(self, d: dict[str, Any], path: str) -> Organization | None:
        org_id = self.get(d, path, "id", _code, required=True, drops="organization")
        name = self.get(d, path, "name", required=True, drops="organization")
        if org_id is None or name is None:
            return None
        raw = {k: v for k, v in d.items() if k != "services"}
        return Organization(org_id, name, self.get(d, path, "description"), self.get(d, path, "email", _email),
                            self.get(d, path, "website", _url), raw=raw)

    def location(self, d: dict[str, Any], path: str) -> Location | None:
        location_id = self.get(d, path, "id", _code, required=True, drops="location")
        if location_id is None:
            return None
        lat = self.get(d, path, "latitude", _number(-90, 90))
        lon = self.get(d, path, "longitude", _number(-180, 180))
        addresses = []
        for a_path, a in self.items(d, path, "addresses"):
            if (address_id := self.get(a, a_path, "id", _code, required=True, drops="address")) is not None:
                addresses.append(Address(
                    address_id, self.get(a, a_path, "address_1"), self.get(a, a_path, "postal_code"),
                    self.get(a, a_path, "city"), self.get(a, a_path, "country"), self.get(a, a_path, "address_type"),
                    self.get(a, a_path, "state_province")
                    or dutch_province(self.get(a, a_path, "postal_code"), self.get(a, a_path, "city")),
                ))
        # One coordinate without the other places the location nowhere.
        has_both = lat is not None and lon is not None
        return Location(
            location_id, self.get(d, path, "name"),
            self.get(d, path, "location_type", _one_of("physical", "postal", "virtual")),
            lat if has_both else None, lon if has_both else None,
            self.get(d, path, "organization_id"), tuple(addresses),
        )

    def service_area(self, d: dict[str, Any], path: str) -> ServiceArea | None:
        area_id = self.get(d, path, "id", _code, required=True, drops="service area")
        municipality = self.get(d, path, "uri", _municipality, required=True, drops="service area")
        if area_id is None or municipality is None:
            return None
        extent = self.get(d, path, "extent")
        extent_type = self.get(d, path, "extent_type", _code)
        pc4 = extent.strip() if extent_type == "text" and extent and _PC4.match(extent.strip()) else None
        return ServiceArea(area_id, municipality, pc4, self.get(d, path, "name"), extent, extent_type)

    def term(self, d: dict[str, Any], path: str) -> TaxonomyTerm | None:
        term_id = self.get(d, path, "id", _code, required=True, drops="attribute")
        name = self.get(d, path, "name", required=True, drops="attribute")
        code = self.get(d, path, "code", _code)
        taxonomy = self.get(d, path, "taxonomy", _code)
        if term_id is None or name is None:
            return None
        if taxonomy == TAXONOMY and code not in TERMS:
            self.issue(d, path, "code", f"{code!r} is not a term of {TAXONOMY}; attribute left out")
            return None
        return TaxonomyTerm(term_id, name, code, taxonomy, self.get(d, path, "description"))

    def capacity(self, d: dict[str, Any], path: str) -> Capacity | None:
        before = len(self.issues)
        capacity_id = self.get(d, path, "id", _code, required=True, drops="capacity")
        unit = d.get("unit") if isinstance(d.get("unit"), dict) else None
        if unit is None:
            self.issue(d, path, "unit", "missing; capacity left out")
            unit_id = unit_name = None
        else:
            unit_id = self.get(unit, f"{path}.unit", "id", _code, required=True, drops="capacity")
            unit_name = self.get(unit, f"{path}.unit", "name", required=True, drops="capacity")
        available = self.get(d, path, "available", _integer(0, 1_000_000), required=True, drops="capacity")
        maximum = self.get(d, path, "maximum", _integer(0, 1_000_000), drops="capacity")
        updated = self.get(d, path, "updated", _datetime, required=True, drops="capacity")
        if unit_id is None or unit_name is None or len(self.issues) > before:
            return None
        if maximum is not None and available > maximum:
            self.issue(d, path, "available", f"{available} exceeds maximum {maximum}; capacity left out")
            return None
        return Capacity(capacity_id, unit_id, unit_name, available, updated, maximum,
                        self.get(d, path, "description"))

    def service(self, d: dict[str, Any], organization: Organization | None,
                org_locations: dict[str, dict[str, Any]]) -> Service | None:
        before = len(self.issues)
        service_id = self.get(d, "", "id", _code, required=True, drops="service")
        name = self.get(d, "", "name", required=True, drops="service")
        status = self.get(d, "", "status", _one_of(*STATUSES), required=True, drops="service")
        # Ages decide eligibility: a service with unreadable ages is not matched at all.
        min_age = self.get(d, "", "minimum_age", _integer(0, 130), drops="service")
        max_age = self.get(d, "", "maximum_age", _integer(0, 130), drops="service")
        if min_age is not None and max_age is not None and min_age > max_age:
            self.issue(d, "", "maximum_age", f"{max_age} is below minimum_age {min_age}; service left out")
        if organization is None:
            nested = d.get("organization")
            if isinstance(nested, dict):
                organization = self.organization(nested, "organization")
            else:
                self.issue(d, "", "organization", "missing; service left out")
        if len(self.issues) > before or organization is None:
            return None

        locations, areas = [], []
        for s_path, sal in self.items(d, "", "service_at_locations"):
            nested = sal.get("location")
            if not isinstance(nested, dict):
                nested = org_locations.get(str(sal.get("location_id")))
            sal_id = self.get(sal, s_path, "id", _code, required=True, drops="service at location")
            if nested is None:
                self.issue(sal, s_path, "location", "missing; service at location left out")
            elif sal_id is not None and (location := self.location(nested, f"{s_path}.location")):
                locations.append(ServiceAtLocation(sal_id, location, self.get(sal, s_path, "description")))
            areas += [self.service_area(a, a_path) for a_path, a in self.items(sal, s_path, "service_areas")]
        areas += [self.service_area(a, a_path) for a_path, a in self.items(d, "", "service_areas")]

        languages: dict[str, Language] = {}
        for l_path, lang in self.items(d, "", "languages"):
            lang_id = self.get(lang, l_path, "id", _code, required=True, drops="language")
            code = self.get(lang, l_path, "code", _language, required=True, drops="language")
            if lang_id is not None and code is not None:
                languages.setdefault(code, Language(lang_id, code, self.get(lang, l_path, "name")))

        schedules = []
        for p, s in self.items(d, "", "schedules"):
            if (schedule_id := self.get(s, p, "id", _code, required=True, drops="schedule")) is not None:
                schedules.append(Schedule(
                    schedule_id, self.get(s, p, "freq", _one_of("WEEKLY", "MONTHLY")), self.get(s, p, "byday"),
                    self.get(s, p, "opens_at", _time), self.get(s, p, "closes_at", _time),
                    self.get(s, p, "description"),
                ))

        contacts = []
        for p, c in self.items(d, "", "contacts"):
            if (contact_id := self.get(c, p, "id", _code, required=True, drops="contact")) is None:
                continue
            phones = []
            for pp, ph in self.items(c, p, "phones"):
                phone_id = self.get(ph, pp, "id", _code, required=True, drops="phone")
                number = self.get(ph, pp, "number", _code, required=True, drops="phone")
                if phone_id is not None and number is not None:
                    phones.append(Phone(phone_id, number))
            contacts.append(Contact(contact_id, self.get(c, p, "name"), self.get(c, p, "title"),
                                    self.get(c, p, "email", _email), tuple(_unique(phones))))

        attributes = []
        for p, a in self.items(d, "", "attributes"):
            attribute_id = self.get(a, p, "id", _code, required=True, drops="attribute")
            term = a.get("taxonomy_term")
            if not isinstance(term, dict):
                self.issue(a, p, "taxonomy_term", "missing; attribute left out")
            elif attribute_id is not None and (parsed := self.term(term, f"{p}.taxonomy_term")):
                attributes.append(Attribute(attribute_id, parsed, self.get(a, p, "value")))

        capacities = [self.capacity(c, p) for p, c in self.items(d, "", "capacities")]
        return Service(
            id=service_id, name=name, status=status, organization=organization,
            description=self.get(d, "", "description"),
            eligibility_description=self.get(d, "", "eligibility_description"),
            minimum_age=min_age, maximum_age=max_age,
            application_process=self.get(d, "", "application_process"),
            fees_description=self.get(d, "", "fees_description"),
            assured_date=self.get(d, "", "assured_date", _date),
            email=self.get(d, "", "email", _email), url=self.get(d, "", "url", _url),
            locations=tuple(_unique(locations)), areas=tuple(_unique(a for a in areas if a)),
            languages=tuple(languages.values()), schedules=tuple(_unique(schedules)),
            contacts=tuple(_unique(contacts)), attributes=tuple(_unique(attributes)),
            capacities=tuple(_unique(c for c in capacities if c)),
            raw=d,
        )


def _unique(items: Any) -> list[Any]:
    """First of each id: HSDS repeats an object wherever it is linked."""
    seen: dict[str, Any] = {}
    for item in items:
        seen.setdefault(item.id, item)
    return list(seen.values())


def _finish(reader: _Reader, services: list[Service]) -> ParseResult:
    kept: dict[str, Service] = {}
    for service in services:
        if service.id in kept:
            reader.issues.append(
                ImportIssue(reader.file, service.id, "id", "duplicate service id; later record left out"))
        else:
            kept[service.id] = service
    return ParseResult(list(kept.values()), list(dict.fromkeys(reader.issues)))


def parse_json(data: Any, file: str = "<json>") -> ParseResult:
    """Services from ``service_full``/``organization_full`` objects, a list of them, or a page."""
    reader = _Reader(file)
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
    return _finish(reader, services)


def _organization_full(reader: _Reader, d: dict[str, Any]) -> list[Service]:
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


def load(path: Path) -> ParseResult:
    """A JSON file, or a directory holding a tabular datapackage."""
    return load_datapackage(path) if path.is_dir() else load_json(path)


# --- the tabular form ------------------------------------------------------------------

# resource name -> (file name, columns written); names and columns are the specification's.
TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "organization": ("organizations.csv", ("id", "name", "description", "email", "website")),
    "service": ("services.csv", (
        "id", "organization_id", "name", "description", "url", "email", "status", "application_process",
        "fees_description", "eligibility_description", "minimum_age", "maximum_age", "assured_date")),
    "location": ("locations.csv", ("id", "location_type", "organization_id", "name", "latitude", "longitude")),
    "address": ("addresses.csv", ("id", "location_id", "address_1", "city", "state_province", "postal_code",
                                  "country", "address_type")),
    "service_at_location": ("service_at_location.csv", ("id", "service_id", "location_id", "description")),
    "service_area": ("service_areas.csv", ("id", "service_id", "name", "extent", "extent_type", "uri")),
    "language": ("languages.csv", ("id", "service_id", "name", "code")),
    "schedule": ("schedules.csv", ("id", "service_id", "freq", "byday", "opens_at", "closes_at", "description")),
    "contact": ("contacts.csv", ("id", "service_id", "name", "title", "email")),
    "phone": ("phones.csv", ("id", "contact_id", "number")),
    "taxonomy_term": ("taxonomy_terms.csv", ("id", "code", "name", "description", "taxonomy")),
    "attribute": ("attributes.csv", ("id", "link_id", "taxonomy_term_id", "link_entity", "value")),
    "unit": ("units.csv", ("id", "name")),
    "service_capacity": ("service_capacity.csv", ("id", "service_id", "unit_id", "available", "maximum",
                                                  "description", "updated")),
}


def load_datapackage(directory: Path) -> ParseResult:
    """Services from a tabular datapackage: rows are linked by id into ``service_full``
    objects, then read like JSON; issues name the CSV file and row."""
    origins: dict[int, tuple[str, str]] = {}
    reader = _Reader(directory.name, origins)
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
            reader.issue(location, "", "organization_id",
                         f"unknown organization {location['organization_id']!r}; value left out")
            location["organization_id"] = None
    resolve("service_at_location", "location_id", locations, "location", "location")
    resolve("service_capacity", "unit_id", units, "unit", "unit")
    # Attributes may describe any object; matching reads only those of services.
    tables["attribute"] = [r for r in tables["attribute"] if r.get("link_entity") == "service"]
    resolve("attribute", "taxonomy_term_id", terms, "taxonomy_term", "taxonomy term")
    attach("address", "location_id", locations, "addresses", "location")
    attach("phone", "contact_id", contacts, "phones", "contact")
    for table, into in (("service_at_location", "service_at_locations"), ("service_area", "service_areas"),
                        ("language", "languages"), ("schedule", "schedules"), ("contact", "contacts"),
                        ("service_capacity", "capacities")):
        attach(table, "service_id", services, into, "service")
    attach("attribute", "link_id", services, "attributes", "service")

    parsed: list[Service] = []
    for row in services.values():
        reader.record = row["id"]
        organization = organizations.get(row.get("organization_id") or "")
        if organization is None:
            reader.issue(row, "", "organization_id", f"unknown organization {row.get('organization_id')!r}; "
                                                     "service left out")
            continue
        org = reader.organization(organization, "")
        if org is not None and (service := reader.service(row, org, {})) is not None:
            parsed.append(service)
    return _finish(reader, parsed)


# --- writing ---------------------------------------------------------------------------


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v != [] and v != {}}


def _iso(value: date | time | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def dutch_province(postal_code: str | None, city: str | None) -> str | None:
    """HSDS requires ``state_province`` in every address: for a Dutch address, the province
    of its municipality, by postcode area, else by the city's name."""
    area = PC4_CENTROIDS.get(pc4_of(postal_code) or "")
    by_city = municipalities.find(city) if city else None
    code = area[0] if area else by_city.code if by_city else None
    return municipalities.province_of(code) if code else None


def province(address: Address, fallback_municipality: str | None) -> str | None:
    """The address's province, else that of the municipality the service serves."""
    if address.state_province:
        return address.state_province
    return municipalities.province_of(fallback_municipality) if fallback_municipality else None


def _location_json(loc: Location, municipality: str | None = None) -> dict[str, Any]:
    return _compact({
        "id": loc.id, "location_type": loc.location_type, "organization_id": loc.organization_id,
        "name": loc.name, "latitude": loc.latitude, "longitude": loc.longitude,
        "addresses": [_compact({**vars(a), "state_province": province(a, municipality)}) for a in loc.addresses],
    })


def to_service_full(s: Service) -> dict[str, Any]:
    """The service as an HSDS ``service_full`` object (only the fields this project reads)."""
    o = s.organization
    return _compact({
        "id": s.id, "name": s.name, "description": s.description, "url": s.url, "email": s.email,
        "status": s.status, "application_process": s.application_process,
        "fees_description": s.fees_description, "eligibility_description": s.eligibility_description,
        "minimum_age": s.minimum_age, "maximum_age": s.maximum_age, "assured_date": _iso(s.assured_date),
        "organization": _compact({"id": o.id, "name": o.name, "description": o.description,
                                  "email": o.email, "website": o.website}),
        "service_at_locations": [_compact({"id": sal.id, "description": sal.description,
                                           "location": _location_json(
                                               sal.location, next((a.municipality_code for a in s.areas), None))})
                                  for sal in s.locations],
        "service_areas": [_compact({"id": a.id, "name": a.name, "extent": a.extent, "extent_type": a.extent_type,
                                    "uri": f"{TOOI_MUNICIPALITY}{a.municipality_code.lower()}"}) for a in s.areas],
        "languages": [_compact(vars(lang)) for lang in s.languages],
        "schedules": [_compact({**vars(sch), "opens_at": _iso(sch.opens_at), "closes_at": _iso(sch.closes_at)})
                      for sch in s.schedules],
        "contacts": [_compact({**vars(c), "phones": [vars(p) for p in c.phones]}) for c in s.contacts],
        "capacities": [_compact({"id": c.id, "unit": {"id": c.unit_id, "name": c.unit}, "available": c.available,
                                 "maximum": c.maximum, "description": c.description, "updated": _iso(c.updated)})
                       for c in s.capacities],
        "attributes": [_compact({"id": a.id, "link_entity": "service", "link_id": s.id, "value": a.value,
                                 "taxonomy_term": _compact(vars(a.term))}) for a in s.attributes],
    })


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
        for table, key in (("service_area", "service_areas"), ("language", "languages"),
                           ("schedule", "schedules"), ("contact", "contacts")):
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
        resources.append({"name": name, "path": path, "profile": "tabular-data-resource",
                          "schema": {"fields": [{"name": c, "type": "string"} for c in columns]}})
    package = {"name": "social-map", "profile": "tabular-data-package", "resources": resources}
    (directory / "datapackage.json").write_text(json.dumps(package, indent=2) + "\n", encoding="utf-8")
