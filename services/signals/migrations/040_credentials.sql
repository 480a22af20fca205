-- Partner keys and privacy officers' credentials move to the shared credentials table
-- (shared/auth.py): partner keys get the partner scopes, revoked ones stay revoked.
INSERT INTO credentials (id, key_hash, scopes, subject, holder, label, created_at, revoked_at)
SELECT gen_random_uuid(), k.key_hash, ARRAY['erase_own', 'ingest', 'read_status'], k.organisation_id::text,
       o.name, k.label, k.created_at, k.revoked_at
FROM api_keys k JOIN organisations o ON o.id = k.organisation_id
ON CONFLICT (key_hash) DO NOTHING;

INSERT INTO credentials (id, key_hash, scopes, subject, holder, label, created_at, revoked_at)
SELECT gen_random_uuid(), key_hash, ARRAY['privacy_officer'], id::text, name, label, created_at, revoked_at
FROM privacy_officer_keys
ON CONFLICT (key_hash) DO NOTHING;

DROP TABLE api_keys;
DROP TABLE privacy_officer_keys;
