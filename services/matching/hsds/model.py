"""The social map's records as read from and written to HSDS: an organization offers services
at locations in service areas, tagged with the project taxonomy's terms (attributes); reading
reports each problem as an ``ImportIssue``. Plain frozen data, plus the
province an address belongs to (HSDS requires one in every address)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any

from services.matching.pc4 import PC4_CENTROIDS, pc4_of
from services.matching.taxonomy import TAXONOMY, TERMS
from shared import municipalities


class ServiceStatus(StrEnum):
    """HSDS ``service.status`` (the migration's CHECK lists the same values)."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    DEFUNCT = "defunct"
    TEMPORARILY_CLOSED = "temporarily closed"


STATUSES = tuple(status.value for status in ServiceStatus)
TOOI_MUNICIPALITY = "https://identifier.overheid.nl/tooi/id/gemeente/"


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
        return frozenset(a.term.code for a in self.attributes if a.term.taxonomy == TAXONOMY and a.term.code in TERMS)


@dataclass
class ParseResult:
    services: list[Service]
    issues: list[ImportIssue]


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
