-- Erasure requests, for their status URL: who asked and how much, nothing about the person.
-- (This migration used to create the municipalities' tables as well; they moved to the
-- municipalities service, whose migrations create them. The runner tracks migrations by number,
-- so a database that ran the old version keeps its record and 003 drops those tables there.)
CREATE TABLE erasures (
    id              uuid PRIMARY KEY,
    organisation_id uuid NOT NULL REFERENCES organisations (id),
    requested_at    timestamptz NOT NULL,
    signals         int NOT NULL,
    event_ids       uuid[] NOT NULL
);
