-- The controller's privacy officers: the only credential that erases a person across every
-- organisation (GDPR art. 17). Separate from partner keys, so a partner key never opens it.
-- Stored as SHA-256 digests of long random secrets, like the partner keys.
CREATE TABLE privacy_officer_keys (
    key_hash   text PRIMARY KEY,
    id         uuid NOT NULL UNIQUE,
    name       text NOT NULL,
    label      text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- An erasure is either an organisation withdrawing its own signals or a privacy officer
-- erasing the person. request_digest makes the same request twice one erasure.
ALTER TABLE erasures ALTER COLUMN organisation_id DROP NOT NULL;
ALTER TABLE erasures ADD COLUMN officer_id uuid;
ALTER TABLE erasures ADD COLUMN scope text NOT NULL DEFAULT 'caregiver';
ALTER TABLE erasures ADD COLUMN request_digest text UNIQUE;

-- Who asked to erase what, and when: append-only. The person appears only as digests of
-- their pseudonyms (enough to answer "was this person's erasure requested?" given the
-- identity, useless without it); erasure deletes the signals, never this record.
CREATE TABLE erasure_audit (
    id              bigserial PRIMARY KEY,
    erasure_id      uuid NOT NULL UNIQUE,
    requested_at    timestamptz NOT NULL,
    role            text NOT NULL,          -- partner | privacy_officer
    requested_by    uuid NOT NULL,          -- the organisation's or the officer credential's id
    requester       text NOT NULL,          -- its name, as it stood at the time
    scope           text NOT NULL,          -- signals (own withdrawn) | caregiver (everywhere)
    identified_by   text NOT NULL,          -- identity | signal_ids
    subject_digests text[] NOT NULL,
    signals_erased  int NOT NULL
);

CREATE FUNCTION erasure_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'erasure_audit is append-only';
END $$;
CREATE TRIGGER erasure_audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON erasure_audit
    FOR EACH STATEMENT EXECUTE FUNCTION erasure_audit_append_only();
