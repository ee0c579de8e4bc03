#!/bin/bash
# The primary's side of a streaming standby: the replication user, its slot, and its pg_hba.conf line.
# The postgres image runs it once, on a fresh data directory (mounted in docker-entrypoint-initdb.d).
# On a primary that already has data, run it by hand; it changes nothing that is already there:
#   docker compose exec -u postgres postgres bash /docker-entrypoint-initdb.d/50-replication.sh
#   docker compose exec -u postgres postgres psql -U mcplookup -d mcplookup -c 'SELECT pg_reload_conf()'
# Without POSTGRES_REPLICATION_PASSWORD it does nothing: no standby, no replication user.
set -euo pipefail

if [ -z "${POSTGRES_REPLICATION_PASSWORD:-}" ]; then
    echo "replication: POSTGRES_REPLICATION_PASSWORD is unset, no replication user made"
    exit 0
fi

psql -v ON_ERROR_STOP=1 -v password="$POSTGRES_REPLICATION_PASSWORD" \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
SELECT format('CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD %L', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'replicator') \gexec
SELECT format('ALTER ROLE replicator WITH PASSWORD %L', :'password') \gexec
-- The slot keeps the WAL the standby has not received yet, so a standby that was down catches up
-- instead of needing a new base backup. A slot nobody reads keeps WAL for ever: drop it with the standby
-- (SELECT pg_drop_replication_slot('mcplookup_standby')); max_slot_wal_keep_size bounds it meanwhile.
SELECT pg_create_physical_replication_slot('mcplookup_standby')
WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = 'mcplookup_standby');
SQL

hba="$PGDATA/pg_hba.conf"
line="host replication replicator all scram-sha-256"
grep -qxF "$line" "$hba" || echo "$line" >> "$hba"
echo "replication: user replicator and slot mcplookup_standby are ready"
