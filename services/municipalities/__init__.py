"""The municipalities service: anonymous data for municipalities. It consumes the pipeline's
events, turns each into an anonymous record, releases records only in k-anonymous groups
(``domain``), and serves them per municipality on Kafka, as Server-Sent Events, as signed
webhooks and as statistics over closed periods. Its store holds no personal data."""
