#!/bin/bash
# A streaming standby of the primary at PRIMARY_HOST (default: compose's `postgres`). On an empty data
# directory it clones the primary with pg_basebackup -R (which writes standby.signal and
# primary_conninfo) through the slot replication-primary.sh made, then runs PostgreSQL as a hot
# standby. As root (compose, like the postgres image's own entrypoint) it first gives the volume to
# postgres and runs PostgreSQL as postgres; as postgres itself (Kubernetes, fsGroup) it runs directly.
set -euo pipefail

: "${PGPASSWORD:?set POSTGRES_REPLICATION_PASSWORD, the replication password, to run the standby}"
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
primary="${PRIMARY_HOST:-postgres}"

as_postgres() {
    if [ "$(id -u)" = 0 ]; then gosu postgres "$@"; else "$@"; fi
}

mkdir -p "$PGDATA"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PGDATA"; fi
chmod 0700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "standby: cloning $primary"
    as_postgres pg_basebackup --host="$primary" --port="${PRIMARY_PORT:-5432}" --username=replicator \
        --pgdata="$PGDATA" --write-recovery-conf --wal-method=stream \
        --slot=mcplookup_standby --checkpoint=fast
fi

exec_postgres() {
    if [ "$(id -u)" = 0 ]; then exec gosu postgres postgres "$@"; else exec postgres "$@"; fi
}
exec_postgres -c hot_standby=on -c hot_standby_feedback=on
