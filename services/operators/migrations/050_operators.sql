-- Operators of the console: a credential is issued by the CLI as a one-time sign-in link,
-- which is exchanged for a session. Only SHA-256 digests of both tokens are stored.
CREATE TABLE operators (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE operator_sign_in_links (
    token_hash  text PRIMARY KEY,
    operator_id uuid NOT NULL REFERENCES operators (id),
    expires_at  timestamptz NOT NULL,
    -- A link is used once, except a demo link issued as reusable (the demo banner's).
    reusable    boolean NOT NULL DEFAULT false,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE operator_sessions (
    token_hash  text PRIMARY KEY,
    operator_id uuid NOT NULL REFERENCES operators (id),
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX operator_sessions_expiry ON operator_sessions (expires_at);
