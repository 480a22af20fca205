CREATE TABLE organisations (
    id         uuid PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    kind       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- API keys are stored as SHA-256 digests: they are long random secrets, so a plain digest
-- is enough to make a leaked table useless.
CREATE TABLE api_keys (
    key_hash        text PRIMARY KEY,
    organisation_id uuid NOT NULL REFERENCES organisations (id),
    label           text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);

CREATE TABLE signals (
    id                  uuid PRIMARY KEY,
    organisation_id     uuid NOT NULL REFERENCES organisations (id),
    caregiver_pseudonym text NOT NULL,
    municipality_code   text NOT NULL,
    source_kind         text NOT NULL,
    urgency             text NOT NULL,
    received_at         timestamptz NOT NULL,
    status              text NOT NULL DEFAULT 'received',
    status_rank         int NOT NULL DEFAULT 0,
    case_id             uuid,
    body                jsonb NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signals_org ON signals (organisation_id, received_at);

CREATE TABLE idempotency_keys (
    organisation_id uuid NOT NULL REFERENCES organisations (id),
    key             text NOT NULL,
    request_hash    text NOT NULL,
    signal_id       uuid NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organisation_id, key)
);

-- The referral's journey, one row per downstream event, kept by consuming those events.
CREATE TABLE signal_stages (
    id          bigserial PRIMARY KEY,
    signal_id   uuid NOT NULL REFERENCES signals (id),
    stage       text NOT NULL,
    occurred_at timestamptz NOT NULL,
    event_id    uuid NOT NULL UNIQUE,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX signal_stages_signal ON signal_stages (signal_id, occurred_at);
