-- Dead letters become the operator's queue: recorded before the offset is committed, with
-- what a replay needs (the original headers and key), and a status. A key with an
-- unresolved dead letter parks its later events behind it, so they never overtake it:
--   dead      a failed event waiting for the operator
--   parked    a later event of the same key, held (not handled) behind a dead one
--   replaying put back on its topic; resolved when the consumer sees it again
--   replayed  handled after a replay
ALTER TABLE dead_letters
    ADD COLUMN status text NOT NULL DEFAULT 'dead'
        CHECK (status IN ('dead', 'parked', 'replaying', 'replayed')),
    ADD COLUMN headers jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN event_type text,
    ADD COLUMN resolved_at timestamptz;
CREATE INDEX dead_letters_unresolved ON dead_letters (consumer, topic, key, id)
    WHERE status IN ('dead', 'parked', 'replaying');

-- The outbox also carries copies of records this service did not create (the DLQ copy of
-- a dead letter, a replay to the original topic): their bytes are kept as they were
-- (a poison record need not be UTF-8) and they may have no key.
ALTER TABLE outbox ALTER COLUMN body DROP NOT NULL;
ALTER TABLE outbox ADD COLUMN body_bytes bytea;
ALTER TABLE outbox ADD CONSTRAINT outbox_has_body CHECK (body IS NOT NULL OR body_bytes IS NOT NULL);

-- Erasure is final: per erased caregiver pseudonym, digests of the signal and case ids the
-- erasure removed, so an event about them still in flight is dropped instead of
-- re-creating what was erased. Digests (SHA-256) of the pseudonym and the ids, not the
-- values: the tombstone recognises an event but points back to nobody.
CREATE TABLE tombstones (
    id              bigserial PRIMARY KEY,
    subject_digest  text NOT NULL,
    id_digests      text[] NOT NULL,
    erased_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tombstones_subject ON tombstones (subject_digest);
