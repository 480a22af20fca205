-- Municipalities' credentials: SHA-256 digests of long random secrets, like partner keys.
CREATE TABLE municipality_keys (
    key_hash          text PRIMARY KEY,
    municipality_code text NOT NULL,
    label             text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    revoked_at        timestamptz
);

-- Records waiting to be released in a k-anonymous group. Transient: a row leaves when its
-- group is released or when its delay runs out (suppressed). ``person`` is an opaque token
-- (so groups count persons) and ``arrived_at`` times the delay; neither is ever released,
-- and erasure deletes the person's waiting rows.
CREATE TABLE waiting_records (
    id                bigserial PRIMARY KEY,
    person            text NOT NULL,
    arrived_at        timestamptz NOT NULL,
    municipality_code text NOT NULL,
    record            jsonb NOT NULL
);
CREATE INDEX waiting_records_person ON waiting_records (person);

-- Each municipality's stream of released groups, kept for replay (SSE), webhooks and
-- statistics. The sequence is per municipality, handed out under the row lock of
-- municipal_streams, so groups become visible in sequence order.
CREATE TABLE municipal_streams (
    municipality_code text PRIMARY KEY,
    last_seq          bigint NOT NULL
);

CREATE TABLE released_groups (
    municipality_code text NOT NULL,
    seq               bigint NOT NULL,
    event_id          uuid NOT NULL UNIQUE,
    month             text NOT NULL,
    body              text NOT NULL,
    released_at       timestamptz NOT NULL,
    PRIMARY KEY (municipality_code, seq)
);
CREATE INDEX released_groups_month ON released_groups (municipality_code, month);

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
