#!/usr/bin/env bash
# Creates one database and one login role per service, each role owning only its own database.
#
# Run once by the postgres image's entrypoint, from /docker-entrypoint-initdb.d, when the data
# directory is empty (a fresh volume). The passwords come from the environment and have no
# defaults: SIGNALS_DB_PASSWORD, SCREENING_DB_PASSWORD, MATCHING_DB_PASSWORD, NOTIFY_DB_PASSWORD,
# MUNICIPALITIES_DB_PASSWORD, CASEWORK_DB_PASSWORD, OPERATORS_DB_PASSWORD.
# Re-running it is harmless: existing roles get their password reset, existing databases stay.
set -euo pipefail

SERVICES=(signals screening matching notify municipalities casework operators)

for service in "${SERVICES[@]}"; do
  password_var="${service^^}_DB_PASSWORD"
  password="${!password_var:-}"
  if [[ -z "$password" ]]; then
    echo "init-databases: $password_var is not set" >&2
    exit 1
  fi
  echo "init-databases: role and database '$service'"
  # psql variables (:'name', :"name") quote the values, so a password is never spliced into SQL.
  psql --no-psqlrc -v ON_ERROR_STOP=1 \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}" \
    -v service="$service" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'service')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'service') \gexec
ALTER ROLE :"service" WITH LOGIN PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'service', :'service')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'service') \gexec
REVOKE ALL ON DATABASE :"service" FROM PUBLIC;
GRANT ALL ON DATABASE :"service" TO :"service";
SQL
done
