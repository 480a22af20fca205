-- Re-matching and erasure look reservations up by case; the partial unique index on
-- (service_id, case_id) covers only held ones and leads with the service.
CREATE INDEX IF NOT EXISTS reservation_case ON reservation (case_id);
