-- The Kafka key (caregiver pseudonym) of a dead letter, so erasure can find it.
ALTER TABLE dead_letters ADD COLUMN key text;
CREATE INDEX dead_letters_key ON dead_letters (key);
CREATE INDEX outbox_key ON outbox (key);
