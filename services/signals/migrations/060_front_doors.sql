-- Front doors: one-time sign-in links for the signal form, and self-referrals waiting for
-- their e-mail confirmation (double opt-in).

-- A sign-in link is used once and expires; only its SHA-256 digest is kept.
CREATE TABLE sign_in_tokens (
    token_hash      text PRIMARY KEY,
    organisation_id uuid NOT NULL REFERENCES organisations (id),
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- The public front door posts as one of these organisations, whose kind binds the source
-- kind: caregivers themselves ('self') and residents voicing a concern ('resident').
INSERT INTO organisations (id, name, kind) VALUES
    ('5e1f0000-0000-4000-8000-000000000001', 'Zelfmelding (website)', 'self'),
    ('5e1f0000-0000-4000-8000-000000000002', 'Zorgmelding bewoner (website)', 'resident')
ON CONFLICT (name) DO NOTHING;

-- body holds the submission until it is confirmed (then it becomes a signal and body is
-- cleared) or a day has passed (then the row goes). The digests only count submissions
-- for the rate limit and identify nobody without the address.
CREATE TABLE self_referrals (
    id           uuid PRIMARY KEY,
    token_hash   text NOT NULL UNIQUE,
    email_digest text NOT NULL,
    client_digest text NOT NULL,
    concern      boolean NOT NULL,
    body         jsonb,
    signal_id    uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    confirmed_at timestamptz
);
CREATE INDEX self_referrals_recent ON self_referrals (created_at);
