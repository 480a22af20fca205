-- The caregiver consultant's view of each case. Personal data sits in one jsonb column per
-- row (``personal``), so it can be wrapped in application-level encryption in one place.

CREATE TABLE consultants (
    id                uuid PRIMARY KEY,
    name              text NOT NULL,
    email             text NOT NULL UNIQUE,
    municipality_code text NOT NULL,
    -- The region whose fallback queue this consultant also serves (the back-up), if any.
    fallback_region   text,
    created_at        timestamptz NOT NULL DEFAULT now()
);

-- One-time sign-in links and sessions: only SHA-256 digests are stored.
CREATE TABLE sign_in_tokens (
    digest        text PRIMARY KEY,
    consultant_id uuid NOT NULL REFERENCES consultants (id) ON DELETE CASCADE,
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz
);
CREATE TABLE sessions (
    digest        text PRIMARY KEY,
    consultant_id uuid NOT NULL REFERENCES consultants (id) ON DELETE CASCADE,
    csrf_token    text NOT NULL,
    expires_at    timestamptz NOT NULL
);

-- Groups of municipalities sharing a fallback queue; any other municipality falls to the
-- operator's default region (CASEWORK_DEFAULT_REGION).
CREATE TABLE regions (
    name               text PRIMARY KEY,
    municipality_codes text[] NOT NULL
);

-- The municipality's Wmo desk, which a hand-off (keukentafelgesprek) goes to.
CREATE TABLE wmo_desks (
    municipality_code text PRIMARY KEY,
    name              text NOT NULL,
    email             text NOT NULL
);

CREATE TABLE cases (
    id                     uuid PRIMARY KEY,
    subject                text NOT NULL,          -- the caregiver pseudonym (Kafka key)
    municipality_code      text NOT NULL,
    personal               jsonb NOT NULL DEFAULT '{}',  -- the latest signal's caregiver and recipient
    risk_level             text,
    result                 jsonb,                  -- the case's screening judgement
    crisis_since           timestamptz,
    derailed               boolean NOT NULL DEFAULT false,
    escalated_at           timestamptz,
    escalation_reason      text,
    outreach               text,                   -- no_consent | no_channel
    contact_preference     text,
    proposals              jsonb NOT NULL DEFAULT '[]',
    unmatched              boolean NOT NULL DEFAULT false,
    no_match_reason        text,
    rescreen_due_at        timestamptz,
    support_not_arrived_at timestamptz,
    last_contact_at        timestamptz,
    handed_off_at          timestamptz,
    closed_at              timestamptz,
    close_reason           text,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL
);
CREATE INDEX cases_municipality ON cases (municipality_code) WHERE closed_at IS NULL;

CREATE TABLE case_signals (
    signal_id         uuid PRIMARY KEY,
    case_id           uuid NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    received_at       timestamptz NOT NULL,
    organisation_name text NOT NULL,
    source_kind       text NOT NULL,
    urgency           text NOT NULL,
    observations      text[] NOT NULL,
    consent           jsonb NOT NULL,
    own_result        jsonb,
    personal          jsonb NOT NULL,  -- the whole signal as received (it holds personal data)
    taken_up_at       timestamptz      -- when the referrer was told a person has it
);
CREATE INDEX case_signals_case ON case_signals (case_id, received_at);

-- One row per proposed service: a proposal is a referral the provider has not answered
-- until notify reports otherwise (its referral id arrives with the first update).
CREATE TABLE case_referrals (
    case_id      uuid NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    service_id   text NOT NULL,
    referral_id  uuid,
    service_name text NOT NULL,
    status       text NOT NULL,
    reason_code  text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (case_id, service_id)
);

-- The case's history as the consultant reads it: events, contact attempts, notes, actions.
CREATE TABLE case_events (
    id       bigserial PRIMARY KEY,
    case_id  uuid NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    at       timestamptz NOT NULL,
    kind     text NOT NULL,
    detail   jsonb NOT NULL DEFAULT '{}',
    personal jsonb,        -- free text (notes, outcomes): personal data
    by       text
);
CREATE INDEX case_events_case ON case_events (case_id, at);

