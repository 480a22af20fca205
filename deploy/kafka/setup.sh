#!/usr/bin/env bash
# The kafka-setup container of docker-compose.yml, run as the admin principal once Kafka is
# healthy: sets each service's SCRAM credential (from <SERVICE>_KAFKA_PASSWORD) and adds the
# ACLs of deploy/kafka/acls.tsv (generated from the code by `python -m deploy.kafka_acls`).
# Idempotent: run on every `docker compose up`; a changed password takes effect here.
set -euo pipefail

: "${KAFKA_ADMIN_PASSWORD:?set KAFKA_ADMIN_PASSWORD}"
# Overridable for the unit test that runs this script with stand-in Kafka tools.
bin=${KAFKA_BIN:-/opt/kafka/bin}
acls=${KAFKA_ACLS:-/etc/sts/kafka/acls.tsv}
config=$(mktemp)
trap 'rm -f "$config"' EXIT
cat > "$config" <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$KAFKA_ADMIN_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=/etc/kafka/secrets/ca.crt
PROPERTIES
kafka=(--bootstrap-server kafka:9092 --command-config "$config")

for principal in $(grep '^# principals:' "$acls" | cut -d: -f2); do
  variable="${principal^^}_KAFKA_PASSWORD"
  password="${!variable:?set $variable (the Kafka password of $principal)}"
  "$bin/kafka-configs.sh" "${kafka[@]}" --alter --entity-type users --entity-name "$principal" \
    --add-config "SCRAM-SHA-512=[password=$password]"
done

grep -v '^#' "$acls" | while IFS=$'\t' read -r principal resource pattern operations names; do
  args=(--add --allow-principal "User:$principal" --resource-pattern-type "$pattern")
  for operation in ${operations//,/ }; do args+=(--operation "$operation"); done
  for name in $names; do args+=("--$resource" "$name"); done
  "$bin/kafka-acls.sh" "${kafka[@]}" "${args[@]}" > /dev/null
  echo "ACL: User:$principal $operations on $resource ($pattern) $names"
done
echo "Kafka principals and ACLs are in place."
