-- Erasure and the key holder look signals up by caregiver; without this, a scan per request.
CREATE INDEX IF NOT EXISTS signals_caregiver ON signals (caregiver_pseudonym);
