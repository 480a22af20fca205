-- The closed loop: provider referrals with their lifecycle and deadlines, the partners'
-- contacts for updates, provider API keys, the areas' caregiver consultants and follow-ups.

ALTER TABLE notifications
    ADD COLUMN body_html text,
    ADD COLUMN referral_id uuid,
    -- The referrer whose webhook secret signs this notification (channel webhook).
    ADD COLUMN organisation_id uuid;
CREATE INDEX notifications_signal ON notifications (signal_id);

-- One referral per provider proposal. signal and result are what re-matching needs when the
-- provider declines; they hold personal data and are blanked on erasure.
CREATE TABLE referrals (
    id                uuid PRIMARY KEY,
    case_id           uuid NOT NULL,
    signal_id         uuid NOT NULL,
    organisation_id   uuid NOT NULL,
    correlation_id    text NOT NULL,
    subject_key       text NOT NULL,
    service_id        text NOT NULL,
    service_name      text NOT NULL,
    organization_name text NOT NULL,
    contact_email     text,
    consultant        boolean NOT NULL DEFAULT false,
    reservation_id    uuid,
    status            text NOT NULL DEFAULT 'requested',
    reason_code       text,
    note              text,
    signal            jsonb,
    result            jsonb,
    remind_at         timestamptz,
    escalate_at       timestamptz,
    reminded_at       timestamptz,
    escalated_at      timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL
);
-- A case has at most one open referral per service: a later proposal of the same service
-- (another signal about the same caregiver) joins the referral that is already running.
CREATE UNIQUE INDEX referrals_open_per_service ON referrals (case_id, service_id)
    WHERE status IN ('requested', 'accepted', 'in-progress', 'on-hold');
CREATE INDEX referrals_case ON referrals (case_id);
CREATE INDEX referrals_service ON referrals (service_id, status);
CREATE INDEX referrals_remind ON referrals (remind_at) WHERE status = 'requested' AND reminded_at IS NULL;
CREATE INDEX referrals_escalate ON referrals (escalate_at) WHERE status = 'requested' AND escalated_at IS NULL;

CREATE TABLE referral_history (
    id          bigserial PRIMARY KEY,
    referral_id uuid NOT NULL REFERENCES referrals (id),
    status      text NOT NULL,
    reason_code text,
    note        text,
    updated_by  text NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX referral_history_referral ON referral_history (referral_id, id);

-- How a partner organisation (a referrer, by its id in the signals service) hears back.
CREATE TABLE partners (
    organisation_id uuid PRIMARY KEY,
    name            text NOT NULL,
    email           text,
    webhook_url     text,
    webhook_secret  text,
    language        text NOT NULL DEFAULT 'nl',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (webhook_url IS NULL OR webhook_secret IS NOT NULL)
);

-- Provider API keys, stored as SHA-256 digests; one key answers for one service.
CREATE TABLE provider_keys (
    key_hash   text PRIMARY KEY,
    service_id text NOT NULL,
    label      text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

-- Who takes escalations per municipality: registered with the CLI, or learned from the
-- social map whenever matching proposes the area's consultant (never overriding a registered one).
CREATE TABLE consultants (
    municipality_code text PRIMARY KEY,
    email             text NOT NULL,
    name              text,
    source            text NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- POM: one follow-up question per case, to a caregiver who was told about support.
CREATE TABLE follow_ups (
    id              uuid PRIMARY KEY,
    case_id         uuid NOT NULL UNIQUE,
    signal_id       uuid NOT NULL,
    correlation_id  text NOT NULL,
    subject_key     text NOT NULL,
    signal          jsonb,
    status          text NOT NULL DEFAULT 'scheduled',  -- scheduled | asked | answered | cancelled
    due_at          timestamptz NOT NULL,
    asked_at        timestamptz,
    answered_at     timestamptz,
    support_arrived boolean,
    created_at      timestamptz NOT NULL
);
CREATE INDEX follow_ups_due ON follow_ups (due_at) WHERE status = 'scheduled';
