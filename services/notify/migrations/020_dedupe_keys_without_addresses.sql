-- The caregiver's e-mail address or phone number no longer goes into a message's dedupe key
-- (the case names the caregiver). Existing keys are rewritten to the new form, so an event
-- redelivered after the upgrade still finds its message; should two keys of one case map to
-- the same new key (the caregiver's address changed), the first is rewritten and the other
-- keeps its old form rather than colliding.
WITH rewritten AS (
    SELECT DISTINCT ON (new_key) id, new_key
    FROM (SELECT id, created_at,
                 replace(dedupe_key, ':caregiver:' || address || ':', ':caregiver:-:') AS new_key
          FROM notifications
          WHERE recipient_role = 'caregiver' AND address IS NOT NULL
            AND position(':caregiver:' || address || ':' IN dedupe_key) > 0) candidates
    ORDER BY new_key, created_at
)
UPDATE notifications n SET dedupe_key = r.new_key
FROM rewritten r
WHERE n.id = r.id AND NOT EXISTS (SELECT 1 FROM notifications o WHERE o.dedupe_key = r.new_key);
