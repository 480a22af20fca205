-- Municipalities' credentials: separate from partner API keys, so neither opens the other's
-- API. Stored as SHA-256 digests of long random secrets, like the partner keys.
CREATE TABLE municipality_keys (
    key_hash          text PRIMARY KEY,
    municipality_code text NOT NULL,
    label             text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    revoked_at        timestamptz
);

-- A random salt per caregiver, the input of their pseudonyms in municipalities' streams.
-- Erasure deletes it, which makes the stream's pseudonyms unlinkable for good.
CREATE TABLE stream_salts (
    caregiver_pseudonym text PRIMARY KEY,
    salt                bytea NOT NULL
);

-- Anonymous facts per signal, for statistics. signal_id is cleared when the signal is erased;
-- nothing here is finer than a month, a district and an age band.
CREATE TABLE signal_facts (
    id                     uuid PRIMARY KEY,
    signal_id              uuid UNIQUE,
    municipality_code      text NOT NULL,
    received_month         date NOT NULL,
    source_kind            text NOT NULL,
    area_kind              text,
    area_code              text,
    age_band               text,
    risk_level             text,
    needs                  text[] NOT NULL DEFAULT '{}',
    hours_to_match         double precision,
    hours_to_first_contact double precision
);
CREATE INDEX signal_facts_month ON signal_facts (municipality_code, received_month);

-- Each municipality's anonymised stream, kept for replay (SSE) and webhook delivery. The
-- sequence is per municipality (no gaps that would show another municipality's volume),
-- handed out under the row lock of municipal_streams, so events become visible in
-- sequence order and a reader's cursor never skips one that commits late.
CREATE TABLE municipal_streams (
    municipality_code text PRIMARY KEY,
    last_seq          bigint NOT NULL
);

CREATE TABLE municipal_events (
    municipality_code text NOT NULL,
    seq               bigint NOT NULL,
    event_id          uuid NOT NULL UNIQUE,
    event_type        text NOT NULL,
    body              text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (municipality_code, seq)
);
CREATE INDEX municipal_events_created ON municipal_events (municipality_code, created_at);

-- Webhook subscriptions; delivered_seq is the subscription's cursor in its stream.
CREATE TABLE municipal_webhooks (
    id                uuid PRIMARY KEY,
    municipality_code text NOT NULL,
    url               text NOT NULL,
    secret            text NOT NULL,
    delivered_seq     bigint NOT NULL,
    attempts          int NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX municipal_webhooks_due ON municipal_webhooks (next_attempt_at);

-- Erasure requests, for their status URL: who asked and how much, nothing about the person.
CREATE TABLE erasures (
    id              uuid PRIMARY KEY,
    organisation_id uuid NOT NULL REFERENCES organisations (id),
    requested_at    timestamptz NOT NULL,
    signals         int NOT NULL,
    event_ids       uuid[] NOT NULL
);
