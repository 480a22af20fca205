-- The caregiver consultant closed the case (services/casework): no re-screens are scheduled
-- for a closed case until a new signal opens it again.
ALTER TABLE cases ADD COLUMN closed_at timestamptz, ADD COLUMN close_reason text;
