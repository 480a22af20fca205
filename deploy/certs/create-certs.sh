#!/usr/bin/env bash
# Creates the TLS material docker-compose.yml mounts from deploy/certs/ (or the directory given):
#   ca.crt, ca.key            a private CA for the internal connections (keep ca.key offline)
#   kafka.p12                 the broker's key and certificate for "kafka" (PKCS#12, password
#                             $KAFKA_SSL_KEYSTORE_PASSWORD)
#   postgres.crt, postgres.key  the database server's certificate for "postgres"
#   public.crt, public.key    the proxy's certificate for $PUBLIC_HOST and the workbench's, the
#                             console's and Grafana's names (CASEWORK_PUBLIC_HOST, OPERATORS_PUBLIC_HOST,
#                             GRAFANA_PUBLIC_HOST; defaults werkbank., beheer., grafana.$PUBLIC_HOST),
#                             signed by the private CA: for a trial only; in production put a certificate from a public CA
#                             there (or let Caddy obtain one, see deploy/proxy/Caddyfile)
# Usage: PUBLIC_HOST=steun.example.nl KAFKA_SSL_KEYSTORE_PASSWORD=… deploy/certs/create-certs.sh [dir]
# Existing files are kept (delete them to renew). Needs openssl.
set -euo pipefail

dir=${1:-$(dirname "$0")}
: "${PUBLIC_HOST:?set PUBLIC_HOST (the public name of the proxy, e.g. steun.example.nl)}"
: "${KAFKA_SSL_KEYSTORE_PASSWORD:?set KAFKA_SSL_KEYSTORE_PASSWORD (protects kafka.p12)}"
days=${CERT_DAYS:-825}
mkdir -p "$dir"
cd "$dir"
umask 077

if [[ ! -f ca.key ]]; then
  openssl req -x509 -newkey rsa:4096 -sha256 -nodes -days 3650 -subj "/CN=signal-to-support internal CA" \
    -keyout ca.key -out ca.crt 2> /dev/null
fi

# issue NAME DNS-NAME [DNS-NAME...]: NAME.key and NAME.crt for those names, signed by the CA.
issue() {
  [[ -f "$1.crt" ]] && return
  local name=$1 cn=$2 sans
  shift
  sans=$(printf 'DNS:%s,' "$@")
  openssl req -newkey rsa:2048 -sha256 -nodes -subj "/CN=$cn" -keyout "$name.key" -out "$name.csr" 2> /dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n' "${sans%,}" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" -sha256 \
    -extfile "$name.ext" -out "$name.crt" 2> /dev/null
  rm -f "$name.csr" "$name.ext"
}

issue kafka kafka
issue postgres postgres
issue public "$PUBLIC_HOST" "${CASEWORK_PUBLIC_HOST:-werkbank.$PUBLIC_HOST}" \
  "${OPERATORS_PUBLIC_HOST:-beheer.$PUBLIC_HOST}" "${GRAFANA_PUBLIC_HOST:-grafana.$PUBLIC_HOST}"
if [[ ! -f kafka.p12 ]]; then
  openssl pkcs12 -export -in kafka.crt -inkey kafka.key -certfile ca.crt -name kafka \
    -out kafka.p12 -passout env:KAFKA_SSL_KEYSTORE_PASSWORD
fi
rm -f kafka.key kafka.crt ca.srl
# Readable by the containers' users (kafka: appuser, caddy: root); the private keys of
# PostgreSQL must belong to its user (uid 999) with mode 0600: see the README.
chmod 644 ca.crt kafka.p12 postgres.crt public.crt
chmod 600 ca.key postgres.key public.key
echo "TLS material in $(pwd): ca.crt kafka.p12 postgres.crt postgres.key public.crt public.key"
