-- Crypto-shredding: one data key per caregiver (pseudonym), stored only wrapped by a master
-- key (see shared/crypto.py). key_id is random and is what ciphertexts name; erasing the
-- person deletes the row, which makes every copy of their data unreadable.
CREATE TABLE data_keys (
    key_id              text PRIMARY KEY,
    caregiver_pseudonym text NOT NULL UNIQUE,
    wrapped             text NOT NULL,        -- v1.<master key id>.<nonce+ciphertext>
    created_at          timestamptz NOT NULL DEFAULT now(),
    rewrapped_at        timestamptz
);

-- The ids of destroyed data keys (random ids, nothing personal), so a key restored from a
-- backup taken before its erasure can be destroyed again: `keys shred-erased`.
CREATE TABLE erased_keys (
    key_id    text PRIMARY KEY,
    erased_at timestamptz NOT NULL DEFAULT now()
);
