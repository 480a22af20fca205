"""SQL for the social map (``SocialMapRepository``, which a unit of work holds): import HSDS
records, load match candidates (the domain's ``Candidate``), hold places.

Import is an upsert keyed by the HSDS ids; a record whose content hash is unchanged is not
written at all, so re-importing the same map changes nothing. Places are held with a single
conditional UPDATE, so concurrent holds can never take more places than are available."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.matching.domain import Candidate, haversine_km
from services.matching.hsds.model import Organization, Service
from services.matching.hsds.writers import to_service_full
from services.matching.pc4 import centroid
from services.matching.taxonomy import TAXONOMY
from shared.retention import Purge

# A candidate's fields that arrive as SQL arrays and are sets in the domain.
_SETS = ("terms", "municipality_codes", "pc4s", "languages")


@dataclass
class ImportReport:
    """Counts of services (and of their organizations) by what the import did to them."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    organizations_created: int = 0
    organizations_updated: int = 0
    organizations_unchanged: int = 0


def _hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _organization_hash(o: Organization) -> str:
    return _hash(o.id, o.name, o.description, o.email, o.website, o.raw)


def _service_hash(s: Service) -> str:
    return _hash(to_service_full(s), s.raw)


# Gives the places of the reservations in ``ended`` back, never above the published maximum.
_RESTORE = """
    counts AS (SELECT capacity_id, count(*)::int AS n FROM ended WHERE capacity_id IS NOT NULL GROUP BY capacity_id),
    restored AS (
        UPDATE service_capacity c
        SET available = LEAST(c.available + counts.n, COALESCE(c.maximum, c.available + counts.n))
        FROM counts WHERE c.id = counts.capacity_id RETURNING 1)
    SELECT count(*)::int FROM ended"""


class SocialMapRepository:
    """The social map and its held places, inside a unit of work's transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def _hashes(self, table: str, ids: list[str]) -> dict[str, str]:
        rows = await self._conn.fetch(f"SELECT id, content_hash FROM {table} WHERE id = ANY($1::text[])", ids)
        return {r["id"]: r["content_hash"] for r in rows}

    async def import_records(
        self, records: Iterable[Service], progress: Callable[[int], None] | None = None
    ) -> ImportReport:
        """Upsert the services and their organizations in one transaction."""
        services = list(records)
        organizations = list({s.organization.id: s.organization for s in services}.values())
        report = ImportReport()
        async with self._conn.transaction():
            known = await self._hashes("organization", [o.id for o in organizations])
            for o in organizations:
                digest = _organization_hash(o)
                if known.get(o.id) == digest:
                    report.organizations_unchanged += 1
                    continue
                await self._conn.execute(
                    """INSERT INTO organization (id, name, description, email, website, raw, content_hash)
                       VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7)
                       ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description,
                           email = EXCLUDED.email, website = EXCLUDED.website, raw = EXCLUDED.raw,
                           content_hash = EXCLUDED.content_hash, updated_at = now()""",
                    o.id,
                    o.name,
                    o.description,
                    o.email,
                    o.website,
                    json.dumps(o.raw, default=str),
                    digest,
                )
                if o.id in known:
                    report.organizations_updated += 1
                else:
                    report.organizations_created += 1

            known = await self._hashes("service", [s.id for s in services])
            for done, s in enumerate(services, start=1):
                digest = _service_hash(s)
                if known.get(s.id) == digest:
                    report.unchanged += 1
                else:
                    await self._write_service(s, digest)
                    if s.id in known:
                        report.updated += 1
                    else:
                        report.created += 1
                if progress:
                    progress(done)
        return report

    async def _write_service(self, s: Service, digest: str) -> None:
        await self._conn.execute(
            """INSERT INTO service (id, organization_id, name, status, description, eligibility_description,
                   minimum_age, maximum_age, application_process, fees_description, assured_date, email, url,
                   raw, content_hash)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::text::jsonb, $15)
               ON CONFLICT (id) DO UPDATE SET organization_id = EXCLUDED.organization_id, name = EXCLUDED.name,
                   status = EXCLUDED.status, description = EXCLUDED.description,
                   eligibility_description = EXCLUDED.eligibility_description,
                   minimum_age = EXCLUDED.minimum_age, maximum_age = EXCLUDED.maximum_age,
                   application_process = EXCLUDED.application_process,
                   fees_description = EXCLUDED.fees_description, assured_date = EXCLUDED.assured_date,
                   email = EXCLUDED.email, url = EXCLUDED.url, raw = EXCLUDED.raw,
                   content_hash = EXCLUDED.content_hash, updated_at = now()""",
            s.id,
            s.organization.id,
            s.name,
            s.status,
            s.description,
            s.eligibility_description,
            s.minimum_age,
            s.maximum_age,
            s.application_process,
            s.fees_description,
            s.assured_date,
            s.email,
            s.url,
            json.dumps(s.raw, default=str),
            digest,
        )
        await self._conn.executemany(
            """INSERT INTO location (id, organization_id, name, location_type, latitude, longitude,
                   address_1, postal_code, city)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
               ON CONFLICT (id) DO UPDATE SET organization_id = EXCLUDED.organization_id, name = EXCLUDED.name,
                   location_type = EXCLUDED.location_type, latitude = EXCLUDED.latitude,
                   longitude = EXCLUDED.longitude, address_1 = EXCLUDED.address_1,
                   postal_code = EXCLUDED.postal_code, city = EXCLUDED.city""",
            [
                (
                    loc.id,
                    loc.organization_id,
                    loc.name,
                    loc.location_type,
                    loc.latitude,
                    loc.longitude,
                    *((a.address_1, a.postal_code, a.city) if (a := next(iter(loc.addresses), None)) else (None,) * 3),
                )
                for loc in (sal.location for sal in s.locations)
            ],
        )
        await self._conn.executemany(
            """INSERT INTO taxonomy_term (id, code, name, description, taxonomy) VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (id) DO UPDATE SET code = EXCLUDED.code, name = EXCLUDED.name,
                   description = EXCLUDED.description, taxonomy = EXCLUDED.taxonomy
               WHERE (taxonomy_term.code, taxonomy_term.name, taxonomy_term.description, taxonomy_term.taxonomy)
                     IS DISTINCT FROM (EXCLUDED.code, EXCLUDED.name, EXCLUDED.description, EXCLUDED.taxonomy)""",
            [(a.term.id, a.term.code, a.term.name, a.term.description, a.term.taxonomy) for a in s.attributes],
        )
        # The service's own objects are replaced as a whole: simpler than diffing, and only
        # services whose content changed get here.
        for table in ("service_at_location", "service_area", "language", "schedule", "contact"):
            await self._conn.execute(f"DELETE FROM {table} WHERE service_id = $1", s.id)
        await self._conn.execute("DELETE FROM attribute WHERE link_entity = 'service' AND link_id = $1", s.id)
        children: list[tuple[str, list[tuple[Any, ...]]]] = [
            (
                "INSERT INTO service_at_location (service_id, id, location_id, description) VALUES ($1, $2, $3, $4)",
                [(s.id, sal.id, sal.location.id, sal.description) for sal in s.locations],
            ),
            (
                """INSERT INTO service_area (service_id, id, municipality_code, pc4, name, extent, extent_type)
                VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                [(s.id, a.id, a.municipality_code, a.pc4, a.name, a.extent, a.extent_type) for a in s.areas],
            ),
            (
                "INSERT INTO language (service_id, code, id, name) VALUES ($1, $2, $3, $4)",
                [(s.id, lang.code, lang.id, lang.name) for lang in s.languages],
            ),
            (
                """INSERT INTO schedule (service_id, id, freq, byday, opens_at, closes_at, description)
                VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                [(s.id, x.id, x.freq, x.byday, x.opens_at, x.closes_at, x.description) for x in s.schedules],
            ),
            (
                """INSERT INTO contact (service_id, id, name, title, email, phones)
                VALUES ($1, $2, $3, $4, $5, $6::text::jsonb)""",
                [(s.id, c.id, c.name, c.title, c.email, json.dumps([vars(p) for p in c.phones])) for c in s.contacts],
            ),
            (
                """INSERT INTO attribute (link_entity, link_id, id, taxonomy_term_id, value)
                VALUES ('service', $1, $2, $3, $4)""",
                [(s.id, a.id, a.term.id, a.value) for a in s.attributes],
            ),
        ]
        for sql, rows in children:
            await self._conn.executemany(sql, rows)
        # Only a newer report from the provider replaces a count: re-applying an old one would
        # hand out again the places held since.
        await self._conn.executemany(
            """INSERT INTO service_capacity (id, service_id, unit_id, unit, available, maximum, description, updated)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               ON CONFLICT (id) DO UPDATE SET service_id = EXCLUDED.service_id, unit_id = EXCLUDED.unit_id,
                   unit = EXCLUDED.unit, available = EXCLUDED.available, maximum = EXCLUDED.maximum,
                   description = EXCLUDED.description, updated = EXCLUDED.updated
               WHERE EXCLUDED.updated > service_capacity.updated""",
            [(c.id, s.id, c.unit_id, c.unit, c.available, c.maximum, c.description, c.updated) for c in s.capacities],
        )
        await self._conn.execute(
            "DELETE FROM service_capacity WHERE service_id = $1 AND NOT (id = ANY($2::text[]))",
            s.id,
            [c.id for c in s.capacities],
        )

    async def load_candidates(self, municipality_code: str, pc4: str | None) -> list[Candidate]:
        """Services with an area in the municipality (and the postcode area, when given), in any
        status: matching itself explains why an inactive one is not proposed."""
        rows = await self._conn.fetch(
            """SELECT s.id AS service_id, s.name AS service_name, o.name AS organization_name, s.status,
                      s.minimum_age AS min_age, s.maximum_age AS max_age, s.assured_date,
                      COALESCE(s.email, (SELECT c.email FROM contact c WHERE c.service_id = s.id AND c.email IS NOT NULL
                                         ORDER BY c.id LIMIT 1), o.email) AS contact_email,
                      (SELECT c.phones->0->>'number' FROM contact c WHERE c.service_id = s.id
                       AND jsonb_array_length(c.phones) > 0 ORDER BY c.id LIMIT 1) AS contact_phone,
                      (SELECT concat_ws(', ', l.address_1, concat_ws(' ', l.postal_code, l.city))
                       FROM service_at_location sal JOIN location l ON l.id = sal.location_id
                       WHERE sal.service_id = s.id AND l.address_1 IS NOT NULL ORDER BY sal.id LIMIT 1) AS address,
                      COALESCE(s.url, o.website) AS url,
                      ARRAY(SELECT DISTINCT t.code FROM attribute a JOIN taxonomy_term t ON t.id = a.taxonomy_term_id
                            WHERE a.link_entity = 'service' AND a.link_id = s.id AND t.taxonomy = $3) AS terms,
                      ARRAY(SELECT DISTINCT municipality_code FROM service_area
                            WHERE service_id = s.id) AS municipality_codes,
                      -- PC4s restrict the service only where it does not also serve the whole municipality.
                      CASE WHEN EXISTS (SELECT 1 FROM service_area WHERE service_id = s.id
                                        AND municipality_code = $1 AND pc4 IS NULL) THEN '{}'::text[]
                           ELSE ARRAY(SELECT pc4 FROM service_area WHERE service_id = s.id
                                      AND municipality_code = $1 AND pc4 IS NOT NULL) END AS pc4s,
                      ARRAY(SELECT code FROM language WHERE service_id = s.id) AS languages,
                      (SELECT sum(available)::int FROM service_capacity WHERE service_id = s.id) AS capacity_available,
                      ARRAY(SELECT ARRAY[l.latitude, l.longitude] FROM service_at_location sal
                            JOIN location l ON l.id = sal.location_id
                            WHERE sal.service_id = s.id AND l.latitude IS NOT NULL ORDER BY sal.id) AS coordinates
               FROM service s JOIN organization o ON o.id = s.organization_id
               WHERE EXISTS (SELECT 1 FROM service_area sa WHERE sa.service_id = s.id AND sa.municipality_code = $1
                             AND (sa.pc4 IS NULL OR $2::text IS NULL OR sa.pc4 = $2))
               ORDER BY s.id""",
            municipality_code,
            pc4,
            TAXONOMY,
        )
        origin = centroid(pc4)
        candidates = []
        for r in rows:
            fields = dict(r)
            points = [tuple(p) for p in fields.pop("coordinates")]
            # Of several locations, the one nearest the caregiver is the one they would visit.
            nearest = (
                min(points, key=lambda p: haversine_km(origin, p)) if origin and points else next(iter(points), None)
            )
            fields |= {name: frozenset(fields[name]) for name in _SETS}
            fields |= {"latitude": nearest[0], "longitude": nearest[1]} if nearest else {}
            candidates.append(Candidate(**fields))
        return candidates

    async def reserve(self, service_id: str, case_id: UUID, hold_minutes: int) -> UUID | None:
        """Hold a place at an active service for the case; None when no place is free.

        Holding again for the same case returns the existing hold. A service that publishes no
        capacity gets a hold without a count."""
        try:
            async with self._conn.transaction():
                existing = await self._held(service_id, case_id)
                if existing is not None:
                    return existing
                service = await self._conn.fetchrow(
                    """SELECT status, EXISTS (SELECT 1 FROM service_capacity WHERE service_id = $1) AS counted
                       FROM service WHERE id = $1""",
                    service_id,
                )
                if service is None or service["status"] != "active":
                    return None
                capacity_id = None
                if service["counted"]:
                    # The outer "available > 0" is re-checked on the row as it is after any
                    # concurrent holder commits, so the last place goes to exactly one caller.
                    capacity_id = await self._conn.fetchval(
                        """UPDATE service_capacity SET available = available - 1
                           WHERE id = (SELECT id FROM service_capacity WHERE service_id = $1 AND available > 0
                                       ORDER BY available DESC, id LIMIT 1 FOR UPDATE)
                             AND available > 0
                           RETURNING id""",
                        service_id,
                    )
                    if capacity_id is None:
                        return None
                return await self._conn.fetchval(
                    """INSERT INTO reservation (service_id, capacity_id, case_id, expires_at)
                       VALUES ($1, $2, $3, now() + make_interval(mins => $4)) RETURNING id""",
                    service_id,
                    capacity_id,
                    case_id,
                    hold_minutes,
                )
        except asyncpg.UniqueViolationError:
            # A concurrent call held a place for the same case first; its place was given back
            # with this transaction, and its hold is the answer.
            return await self._held(service_id, case_id)

    async def _held(self, service_id: str, case_id: UUID) -> UUID | None:
        return await self._conn.fetchval(
            "SELECT id FROM reservation WHERE service_id = $1 AND case_id = $2 AND status = 'held'",
            service_id,
            case_id,
        )

    async def release(self, reservation_id: UUID) -> bool:
        """Give a held place back; True when this call released it, False when it was not held."""
        released = await self._conn.fetchval(
            """WITH ended AS (UPDATE reservation SET status = 'released', updated_at = now()
                              WHERE id = $1 AND status = 'held' RETURNING capacity_id),"""
            + _RESTORE,
            reservation_id,
        )
        return released == 1

    async def expire_reservations(self, now: datetime) -> int:
        """Expire the holds that ran out by ``now`` and give their places back; returns how many."""
        return await self._conn.fetchval(
            """WITH ended AS (UPDATE reservation SET status = 'expired', updated_at = now()
                              WHERE status = 'held' AND expires_at <= $1 RETURNING capacity_id),"""
            + _RESTORE,
            now,
        )

    async def stored_records(self) -> list[dict[str, Any]]:
        """The services as imported (``service_full`` shape, with their organization), by id."""
        rows = await self._conn.fetch(
            """SELECT s.raw::text AS service, o.raw::text AS organization
               FROM service s JOIN organization o ON o.id = s.organization_id ORDER BY s.id"""
        )
        # Text, not jsonb: the result is the same whether or not the connection decodes json.
        return [{**json.loads(r["service"]), "organization": json.loads(r["organization"])} for r in rows]

    async def confirm(self, reservation_id: UUID) -> bool:
        """The provider accepted: the held place is taken for good."""
        return (
            await self._conn.fetchval(
                """UPDATE reservation SET status = 'confirmed', updated_at = now()
               WHERE id = $1 AND status = 'held' RETURNING true""",
                reservation_id,
            )
            or False
        )

    async def proposed_for(self, case_id: UUID) -> frozenset[str]:
        """Every service a place was ever held at for this case."""
        rows = await self._conn.fetch("SELECT DISTINCT service_id FROM reservation WHERE case_id = $1", case_id)
        return frozenset(r["service_id"] for r in rows)

    async def records_in_area(self, municipality_code: str, pc4: str | None) -> list[dict[str, Any]]:
        """The active services (``service_full``, with their organization) serving this
        municipality, and this postcode area when given: what the public social map shows."""
        rows = await self._conn.fetch(
            """SELECT s.raw::text AS service, o.raw::text AS organization
               FROM service s JOIN organization o ON o.id = s.organization_id
               WHERE s.status = 'active' AND EXISTS (
                   SELECT 1 FROM service_area sa WHERE sa.service_id = s.id AND sa.municipality_code = $1
                     AND (sa.pc4 IS NULL OR $2::text IS NULL OR sa.pc4 = $2))
               ORDER BY s.name, s.id""",
            municipality_code,
            pc4,
        )
        return [{**json.loads(r["service"]), "organization": json.loads(r["organization"])} for r in rows]


def retention_purges(settings: Any) -> list[Purge]:
    """Released and expired holds (a case id and a service) go after
    ``retention_reservation_days``; held and confirmed places are the capacity's bookkeeping."""
    return [
        Purge(
            "reservation",
            settings.retention_reservation_days,
            """
        DELETE FROM reservation WHERE id IN (
            SELECT id FROM reservation WHERE status IN ('released', 'expired') AND updated_at < $1 LIMIT $2)
        RETURNING 1""",
        )
    ]
