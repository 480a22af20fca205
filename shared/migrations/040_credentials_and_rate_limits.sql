-- Bearer credentials of every kind (shared/auth.py): a key is stored only as its SHA-256
-- digest. A revoked row is kept, so the same key value can never be issued again.
CREATE TABLE credentials (
    id              uuid PRIMARY KEY,
    key_hash        text NOT NULL UNIQUE,
    scopes          text[] NOT NULL,
    subject         text NOT NULL,            -- whom it speaks for: organisation, municipality, service, officer
    holder          text NOT NULL DEFAULT '', -- a name, as it stood when issued (audit)
    label           text NOT NULL DEFAULT '',
    rate_per_minute int,                      -- NULL: the scope's setting
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    last_used_at    timestamptz,              -- written at most once a minute
    revoked_at      timestamptz
);

-- Requests per credential per one-minute window (shared/ratelimit.py), shared by every
-- instance of the service.
CREATE TABLE rate_limit_windows (
    bucket       text NOT NULL,
    window_start timestamptz NOT NULL,
    hits         int NOT NULL,
    PRIMARY KEY (bucket, window_start)
);
