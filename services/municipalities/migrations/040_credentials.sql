-- Municipalities' credentials move to the shared credentials table (shared/auth.py).
INSERT INTO credentials (id, key_hash, scopes, subject, holder, label, created_at, revoked_at)
SELECT gen_random_uuid(), key_hash, ARRAY['municipality_read'], municipality_code, municipality_code, label,
       created_at, revoked_at
FROM municipality_keys
ON CONFLICT (key_hash) DO NOTHING;

DROP TABLE municipality_keys;
