-- One case per caregiver (by keyed-HMAC pseudonym) within the merge window.
CREATE TABLE cases (
    id                  uuid PRIMARY KEY,
    caregiver_pseudonym text NOT NULL,
    municipality_code   text NOT NULL,
    opened_at           timestamptz NOT NULL,
    last_signal_at      timestamptz NOT NULL,
    risk_level          text NOT NULL,
    confidence          text NOT NULL,
    assessment          jsonb NOT NULL,
    escalated_at        timestamptz,
    rescreen_due_at     timestamptz,
    rescreen_emitted_at timestamptz
);
CREATE INDEX cases_pseudonym ON cases (caregiver_pseudonym, last_signal_at DESC);
CREATE INDEX cases_rescreen ON cases (rescreen_due_at) WHERE rescreen_emitted_at IS NULL;

-- Every signal's own screening; a case's history is its rows here.
CREATE TABLE screenings (
    signal_id       uuid PRIMARY KEY,
    case_id         uuid NOT NULL REFERENCES cases (id),
    organisation_id uuid NOT NULL,
    source_kind     text NOT NULL,
    received_at     timestamptz NOT NULL,
    screened_at     timestamptz NOT NULL,
    result          jsonb NOT NULL
);
CREATE INDEX screenings_case ON screenings (case_id, received_at);
