-- Transactional outbox: events are written in the same transaction as the state change
-- and published by the relay afterwards. Published rows are kept for replay, then purged.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    topic        text NOT NULL,
    key          text NOT NULL,
    headers      jsonb NOT NULL,
    body         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Inbox: one row per consumed event, written in the state change's transaction, so a
-- redelivered event is recognised and skipped.
CREATE TABLE inbox (
    event_id     uuid NOT NULL,
    consumer     text NOT NULL,
    topic        text NOT NULL,
    event_type   text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Dead letters as the operator sees them; the same record goes to <topic>.dlq.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    topic       text NOT NULL,
    partition   int NOT NULL,
    "offset"    bigint NOT NULL,
    consumer    text NOT NULL,
    event_id    text,
    error_type  text NOT NULL,
    error       text NOT NULL,
    attempts    int NOT NULL,
    body        bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
