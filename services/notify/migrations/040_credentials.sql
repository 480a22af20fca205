-- Provider keys move to the shared credentials table (shared/auth.py).
INSERT INTO credentials (id, key_hash, scopes, subject, holder, label, created_at, revoked_at)
SELECT gen_random_uuid(), key_hash, ARRAY['provider'], service_id, service_id, label, created_at, revoked_at
FROM provider_keys
ON CONFLICT (key_hash) DO NOTHING;

DROP TABLE provider_keys;
