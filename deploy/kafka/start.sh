#!/usr/bin/env bash
# Starts the Kafka broker of docker-compose.yml: the checked-in server.properties plus the
# secrets from the environment, storage formatted once with the admin SCRAM user, then the
# broker. Also writes the admin client configuration the health check and operators use
# (docker compose exec kafka /opt/kafka/bin/kafka-topics.sh --bootstrap-server kafka:9092
#  --command-config /tmp/sts/admin.properties --list).
set -euo pipefail

: "${CLUSTER_ID:?set CLUSTER_ID}"
: "${KAFKA_ADMIN_PASSWORD:?set KAFKA_ADMIN_PASSWORD}"
: "${KAFKA_SSL_KEYSTORE_PASSWORD:?set KAFKA_SSL_KEYSTORE_PASSWORD}"

# Overridable for the unit test that runs this script with stand-in Kafka tools.
bin=${KAFKA_BIN:-/opt/kafka/bin}
source=${STS_KAFKA_CONFIG:-/etc/sts/kafka/server.properties}
work=${STS_KAFKA_WORK:-/tmp/sts}
mkdir -p "$work"
chmod 700 "$work"
config="$work/server.properties"
jaas="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$KAFKA_ADMIN_PASSWORD\";"
{
  cat "$source"
  echo "ssl.keystore.password=$KAFKA_SSL_KEYSTORE_PASSWORD"
  # The broker's own login on its SASL_SSL listener (inter-broker traffic).
  echo "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$jaas"
} > "$config"

cat > "$work/admin.properties" <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=$jaas
ssl.truststore.type=PEM
ssl.truststore.location=/etc/kafka/secrets/ca.crt
PROPERTIES

# Formats only an empty data directory; the admin user exists from the first start on.
"$bin/kafka-storage.sh" format --ignore-formatted --cluster-id "$CLUSTER_ID" --config "$config" \
  --add-scram "SCRAM-SHA-512=[name=admin,password=$KAFKA_ADMIN_PASSWORD]"

exec "$bin/kafka-server-start.sh" "$config"
