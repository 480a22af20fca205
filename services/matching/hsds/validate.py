"""Validating HSDS objects into records: every bad value is an ``ImportIssue`` naming the file,
the record (or CSV row) and the field, and is left out; a record without what identifies it or
decides eligibility (id, name, status, organization, ages) is left out whole. Both readers (JSON
and the tabular datapackage) go through ``Reader``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date, datetime, time
from typing import Any

from services.matching.hsds.model import (
    STATUSES,
    TOOI_MUNICIPALITY,
    Address,
    Attribute,
    Capacity,
    Contact,
    ImportIssue,
    Language,
    Location,
    Organization,
    ParseResult,
    Phone,
    Schedule,
    Service,
    ServiceArea,
    ServiceAtLocation,
    TaxonomyTerm,
    dutch_province,
)
from services.matching.taxonomy import TAXONOMY, TERMS
from shared.fields import EMAIL_PATTERN

_MUNICIPALITY_URI = re.compile(r"^https?://identifier\.overheid\.nl/tooi/id/gemeente/gm(\d{4})$", re.IGNORECASE)
_PC4 = re.compile(r"^\d{4}$")
_EMAIL = EMAIL_PATTERN  # one address: a contact e-mail reaches a To header
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


Convert = Callable[[Any], Any]


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _code(value: Any) -> str:
    """Text that identifies something: surrounding spaces are noise there, not content."""
    return _text(value).strip()


def _number(low: float, high: float) -> Convert:
    def convert(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TypeError(f"expected a number, got {type(value).__name__}")
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
    code: str = _matching(_LANGUAGE, "an ISO 639 language code")(_code(value).lower())
    return code


def _municipality(value: Any) -> str:
    found = _MUNICIPALITY_URI.match(_code(value))
    if not found:
        raise ValueError(f"{value!r} is not a municipality identifier ({TOOI_MUNICIPALITY}gmNNNN)")
    return f"GM{found.group(1)}"


# --- objects ---------------------------------------------------------------------------


class Reader:
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

    def get(
        self,
        obj: dict[str, Any],
        path: str,
        key: str,
        convert: Convert = _text,
        *,
        required: bool = False,
        drops: str = "value",
    ) -> Any:
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
        return Organization(
            org_id,
            name,
            self.get(d, path, "description"),
            self.get(d, path, "email", _email),
            self.get(d, path, "website", _url),
            raw=raw,
        )

    def location(self, d: dict[str, Any], path: str) -> Location | None:
        location_id = self.get(d, path, "id", _code, required=True, drops="location")
        if location_id is None:
            return None
        lat = self.get(d, path, "latitude", _number(-90, 90))
        lon = self.get(d, path, "longitude", _number(-180, 180))
        addresses = []
        for a_path, a in self.items(d, path, "addresses"):
            if (address_id := self.get(a, a_path, "id", _code, required=True, drops="address")) is not None:
                addresses.append(
                    Address(
                        address_id,
                        self.get(a, a_path, "address_1"),
                        self.get(a, a_path, "postal_code"),
                        self.get(a, a_path, "city"),
                        self.get(a, a_path, "country"),
                        self.get(a, a_path, "address_type"),
                        self.get(a, a_path, "state_province")
                        or dutch_province(self.get(a, a_path, "postal_code"), self.get(a, a_path, "city")),
                    )
                )
        # One coordinate without the other places the location nowhere.
        has_both = lat is not None and lon is not None
        return Location(
            location_id,
            self.get(d, path, "name"),
            self.get(d, path, "location_type", _one_of("physical", "postal", "virtual")),
            lat if has_both else None,
            lon if has_both else None,
            self.get(d, path, "organization_id"),
            tuple(addresses),
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
        unit_id: str | None = None
        unit_name: str | None = None
        if unit is None:
            self.issue(d, path, "unit", "missing; capacity left out")
        else:
            unit_id = self.get(unit, f"{path}.unit", "id", _code, required=True, drops="capacity")
            unit_name = self.get(unit, f"{path}.unit", "name", required=True, drops="capacity")
        available = self.get(d, path, "available", _integer(0, 1_000_000), required=True, drops="capacity")
        maximum = self.get(d, path, "maximum", _integer(0, 1_000_000), drops="capacity")
        updated = self.get(d, path, "updated", _datetime, required=True, drops="capacity")
        if len(self.issues) > before or unit_id is None or unit_name is None:
            return None
        if maximum is not None and available > maximum:
            self.issue(d, path, "available", f"{available} exceeds maximum {maximum}; capacity left out")
            return None
        return Capacity(capacity_id, unit_id, unit_name, available, updated, maximum, self.get(d, path, "description"))

    def service(
        self, d: dict[str, Any], organization: Organization | None, org_locations: dict[str, dict[str, Any]]
    ) -> Service | None:
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
                schedules.append(
                    Schedule(
                        schedule_id,
                        self.get(s, p, "freq", _one_of("WEEKLY", "MONTHLY")),
                        self.get(s, p, "byday"),
                        self.get(s, p, "opens_at", _time),
                        self.get(s, p, "closes_at", _time),
                        self.get(s, p, "description"),
                    )
                )

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
            contacts.append(
                Contact(
                    contact_id,
                    self.get(c, p, "name"),
                    self.get(c, p, "title"),
                    self.get(c, p, "email", _email),
                    tuple(_unique(phones)),
                )
            )

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
            id=service_id,
            name=name,
            status=status,
            organization=organization,
            description=self.get(d, "", "description"),
            eligibility_description=self.get(d, "", "eligibility_description"),
            minimum_age=min_age,
            maximum_age=max_age,
            application_process=self.get(d, "", "application_process"),
            fees_description=self.get(d, "", "fees_description"),
            assured_date=self.get(d, "", "assured_date", _date),
            email=self.get(d, "", "email", _email),
            url=self.get(d, "", "url", _url),
            locations=tuple(_unique(locations)),
            areas=tuple(_unique(a for a in areas if a)),
            languages=tuple(languages.values()),
            schedules=tuple(_unique(schedules)),
            contacts=tuple(_unique(contacts)),
            attributes=tuple(_unique(attributes)),
            capacities=tuple(_unique(c for c in capacities if c)),
            raw=d,
        )


def _unique(items: Any) -> list[Any]:
    """First of each id: HSDS repeats an object wherever it is linked."""
    seen: dict[str, Any] = {}
    for item in items:
        seen.setdefault(item.id, item)
    return list(seen.values())


def finish(reader: Reader, services: list[Service]) -> ParseResult:
    kept: dict[str, Service] = {}
    for service in services:
        if service.id in kept:
            reader.issues.append(
                ImportIssue(reader.file, service.id, "id", "duplicate service id; later record left out")
            )
        else:
            kept[service.id] = service
    return ParseResult(list(kept.values()), list(dict.fromkeys(reader.issues)))
