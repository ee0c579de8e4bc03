-- wal_position --
-- Where the primary's WAL ends now: a read on a standby that has replayed this far sees every commit visible here
SELECT pg_current_wal_insert_lsn()::text AS lsn;

-- standby_state --
-- Whether this server is a standby, how far it has replayed, and when it replayed its last commit
SELECT pg_is_in_recovery() AS in_recovery,
       pg_last_wal_replay_lsn()::text AS replayed,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS since_last_replay;

-- standby_replayed --
-- How far this standby has replayed its WAL
SELECT pg_last_wal_replay_lsn()::text AS replayed;
