-- Access log in the style of NEN 7513: who read or changed which record, on whose behalf,
-- and when. Ids only, never a personal value: the record it names may be erased later, the
-- log line stays. Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE.
CREATE TABLE access_log (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor_role   text NOT NULL,   -- partner | privacy_officer | provider | consultant | link
    actor_id     text NOT NULL,   -- the credential: a key's digest prefix, an officer's id, a signed link
    organisation text,            -- the actor's organisation (id) or the provider's service id
    on_behalf_of text,            -- whose record it is, when not the actor's own (e.g. the controller)
    action       text NOT NULL CHECK (action IN ('read', 'create', 'update', 'erase')),
    subject_type text NOT NULL,   -- signal | case | referral | erasure | follow_up | caregiver
    subject_id   text NOT NULL,   -- the record's id, or a digest of the caregiver's pseudonym
    outcome      text NOT NULL DEFAULT 'ok'  -- ok | not_found | forbidden
);
CREATE INDEX access_log_subject ON access_log (subject_id, at);
CREATE INDEX access_log_at ON access_log (at);

CREATE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'access_log is append-only';
END $$;
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_append_only();
