-- The municipalities' credentials, stream and statistics moved to the municipalities service
-- (its own store, which holds no personal data). The ingest path no longer writes here: the
-- per-municipality stream row used to serialise every write of the signals database.
-- The municipality data kept here was pseudonymised (per-caregiver salts, facts by signal
-- id), so it is dropped, not moved.
DROP TABLE municipal_webhooks;
DROP TABLE municipal_events;
DROP TABLE municipal_streams;
DROP TABLE signal_facts;
DROP TABLE stream_salts;
DROP TABLE municipality_keys;
