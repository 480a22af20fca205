-- Caregivers who replied STOP: no further message to that address. Only a digest of the
-- normalised address is kept, enough to recognise it and useless without it.
CREATE TABLE do_not_contact (
    address_digest text PRIMARY KEY,
    channel        text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
