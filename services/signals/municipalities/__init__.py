"""What municipalities get from the pipeline: an anonymised event stream per municipality
(Kafka topic, Server-Sent Events, signed webhooks), suppressed statistics, and the erasure
that keeps only anonymous facts. Nothing here ever hands out a name, contact data, free
text, an exact birth year, a full postcode or an exact date."""
