-- create_migrations_table --
-- The bookkeeping of applied migrations, made before the first one runs
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- applied_migrations --
-- Every migration version applied so far
SELECT version FROM schema_migrations;

-- record_migration --
-- One migration applied, in the same transaction as its statements
INSERT INTO schema_migrations (version) VALUES (%(version)s);

-- advisory_lock --
-- Wait for a session-level advisory lock (one migrator at a time across replicas)
SELECT pg_advisory_lock(%(lock_id)s);

-- try_advisory_lock --
-- Take a session-level advisory lock if it is free (the scheduler's leadership)
SELECT pg_try_advisory_lock(%(lock_id)s) AS locked;

-- advisory_unlock --
-- Release a session-level advisory lock
SELECT pg_advisory_unlock(%(lock_id)s);
