-- The social map, modelled on Open Referral HSDS 3.x, plus the places matching holds.
-- Ids are the imported HSDS ids (uuids by the specification; kept as text because older
-- social maps use other identifiers). Objects owned by a service are keyed by
-- (service_id, id): HSDS repeats the same object id wherever an object is linked.
-- content_hash lets a re-import of identical data leave every row untouched.

CREATE TABLE organization (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    description  text,
    email        text,
    website      text,
    raw          jsonb NOT NULL,
    content_hash text NOT NULL,
    imported_at  timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE service (
    id                      text PRIMARY KEY,
    organization_id         text NOT NULL REFERENCES organization (id),
    name                    text NOT NULL,
    status                  text NOT NULL
        CHECK (status IN ('active', 'inactive', 'defunct', 'temporarily closed')),
    description             text,
    eligibility_description text,
    minimum_age             int CHECK (minimum_age BETWEEN 0 AND 130),
    maximum_age             int CHECK (maximum_age BETWEEN 0 AND 130),
    application_process     text,
    fees_description        text,
    assured_date            date,
    email                   text,
    url                     text,
    raw                     jsonb NOT NULL,
    content_hash            text NOT NULL,
    imported_at             timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CHECK (minimum_age IS NULL OR maximum_age IS NULL OR minimum_age <= maximum_age)
);
CREATE INDEX service_organization ON service (organization_id);

-- Locations may be shared by several services, so they stand on their own.
CREATE TABLE location (
    id              text PRIMARY KEY,
    -- No foreign key: a map may name an organization it does not itself describe.
    organization_id text,
    name            text,
    location_type   text CHECK (location_type IN ('physical', 'postal', 'virtual')),
    latitude        double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude       double precision CHECK (longitude BETWEEN -180 AND 180),
    -- The first address is enough to show where to go; the rest stays in service.raw.
    address_1       text,
    postal_code     text,
    city            text
);

CREATE TABLE service_at_location (
    service_id  text NOT NULL REFERENCES service (id) ON DELETE CASCADE,
    id          text NOT NULL,
    location_id text NOT NULL REFERENCES location (id),
    description text,
    PRIMARY KEY (service_id, id)
);

-- One row per municipality, or per PC4 area when the service serves only part of it.
CREATE TABLE service_area (
    service_id        text NOT NULL REFERENCES service (id) ON DELETE CASCADE,
    id                text NOT NULL,
    municipality_code text NOT NULL CHECK (municipality_code ~ '^GM[0-9]{4}$'),
    pc4               text CHECK (pc4 ~ '^[0-9]{4}$'),
    name              text,
    extent            text,
    extent_type       text,
    PRIMARY KEY (service_id, id)
);
CREATE INDEX service_area_municipality ON service_area (municipality_code, pc4);

CREATE TABLE language (
    service_id text NOT NULL REFERENCES service (id) ON DELETE CASCADE,
    code       text NOT NULL,
    id         text NOT NULL,
    name       text,
    PRIMARY KEY (service_id, code)
);

CREATE TABLE schedule (
    service_id  text NOT NULL REFERENCES service (id) ON DELETE CASCADE,
    id          text NOT NULL,
    freq        text CHECK (freq IN ('WEEKLY', 'MONTHLY')),
    byday       text,
    opens_at    time,
    closes_at   time,
    description text,
    PRIMARY KEY (service_id, id)
);

CREATE TABLE contact (
    service_id text NOT NULL REFERENCES service (id) ON DELETE CASCADE,
    id         text NOT NULL,
    name       text,
    title      text,
    email      text,
    phones     jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (service_id, id)
);

CREATE TABLE taxonomy_term (
    id          text PRIMARY KEY,
    code        text,
    name        text NOT NULL,
    description text,
    taxonomy    text
);
CREATE INDEX taxonomy_term_code ON taxonomy_term (taxonomy, code);

-- HSDS attributes link a term to any object (link_entity names its table).
CREATE TABLE attribute (
    link_entity      text NOT NULL,
    link_id          text NOT NULL,
    id               text NOT NULL,
    taxonomy_term_id text NOT NULL REFERENCES taxonomy_term (id),
    value            text,
    PRIMARY KEY (link_entity, link_id, id)
);
CREATE INDEX attribute_term ON attribute (taxonomy_term_id);

-- available is the provider's last report minus the places held or confirmed since; the
-- CHECK is the last line of defence against overbooking.
CREATE TABLE service_capacity (
    id          text PRIMARY KEY,
    service_id  text NOT NULL REFERENCES service (id) ON DELETE CASCADE,
    unit_id     text NOT NULL,
    unit        text NOT NULL,
    available   int NOT NULL CHECK (available >= 0),
    maximum     int CHECK (maximum >= 0),
    description text,
    updated     timestamptz NOT NULL
);
CREATE INDEX service_capacity_service ON service_capacity (service_id);

-- A place held for a case while the provider decides. capacity_id is NULL when the service
-- publishes no capacity: the hold is recorded, but there is no count to decrement.
CREATE TABLE reservation (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    service_id  text NOT NULL REFERENCES service (id) ON DELETE CASCADE,
    capacity_id text REFERENCES service_capacity (id) ON DELETE SET NULL,
    case_id     uuid NOT NULL,
    status      text NOT NULL DEFAULT 'held'
        CHECK (status IN ('held', 'confirmed', 'released', 'expired')),
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX reservation_one_hold ON reservation (service_id, case_id) WHERE status = 'held';
CREATE INDEX reservation_due ON reservation (expires_at) WHERE status = 'held';
