-- Every message notify decides to send. The dedupe key (case, recipient, template) makes a
-- redelivered event a no-op; delivery happens after commit, by the delivery worker.
CREATE TABLE notifications (
    id              uuid PRIMARY KEY,
    dedupe_key      text NOT NULL UNIQUE,
    signal_id       uuid NOT NULL,
    case_id         uuid NOT NULL,
    correlation_id  text NOT NULL,
    subject_key     text NOT NULL,
    recipient_role  text NOT NULL,
    channel         text NOT NULL,
    address         text,
    template        text NOT NULL,
    language        text NOT NULL,
    subject         text NOT NULL,
    body_text       text NOT NULL,
    status          text NOT NULL DEFAULT 'pending',
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_case ON notifications (case_id);
