-- The municipalities' credentials, stream and statistics moved to the municipalities service
-- (its own store, which holds no personal data). The ingest path no longer writes here: the
-- per-municipality stream row used to serialise every write of the signals database.
-- The municipality data kept here was pseudonymised (per-caregiver salts, facts by signal
-- id), so it is dropped, not moved. Only a database that ran the first version of 002 has
-- these tables; a new one never had them.
DROP TABLE IF EXISTS municipal_webhooks;
DROP TABLE IF EXISTS municipal_events;
DROP TABLE IF EXISTS municipal_streams;
DROP TABLE IF EXISTS signal_facts;
DROP TABLE IF EXISTS stream_salts;
DROP TABLE IF EXISTS municipality_keys;
