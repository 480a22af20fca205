-- Delivery with leases: a claim counts the attempt and leases the row for a while, the send
-- happens outside any transaction, and the outcome is recorded in its own. A row whose lease
-- ran out (its sender died) is claimable again and is sent with the same id.
ALTER TABLE notifications
    ADD COLUMN lease_until timestamptz,
    -- Transient failures are retried until this is a retry window old; a resend restarts it.
    ADD COLUMN retry_window_from timestamptz,
    -- When a message failed for good: what an operator resends "everything that failed since".
    ADD COLUMN failed_at timestamptz,
    -- What a circuit breaker guards: the channel, and for webhooks the partner's host, so one
    -- partner's broken endpoint does not hold up the others. Derived here, once, so the claim
    -- can skip a broken channel in SQL and the worker reads the same key from the row.
    ADD COLUMN breaker_key text GENERATED ALWAYS AS (
        CASE WHEN channel = 'webhook'
             THEN 'webhook:' || coalesce(lower(substring(address from '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^:/?#]*)')), '')
             ELSE channel END
    ) STORED;
UPDATE notifications SET retry_window_from = created_at,
    failed_at = CASE WHEN status = 'failed' THEN next_attempt_at END;
ALTER TABLE notifications
    ALTER COLUMN retry_window_from SET DEFAULT now(),
    ALTER COLUMN retry_window_from SET NOT NULL;
-- The age of the oldest pending message (a metric) and the operator's list of failures.
CREATE INDEX notifications_pending_age ON notifications (created_at) WHERE status = 'pending';
CREATE INDEX notifications_failed ON notifications (failed_at) WHERE status = 'failed';
