-- Every referral update and erasure looks referrals up by signal.
CREATE INDEX IF NOT EXISTS referrals_signal ON referrals (signal_id);
