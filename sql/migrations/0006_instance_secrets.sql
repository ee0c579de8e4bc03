-- Keys the service makes for itself when none is configured, made once at random by the first replica
-- that needs one and shared by every replica through the database (e.g. the key that signs discovery
-- cursors, unless MCPLOOKUP_CURSOR_SECRET is set).
CREATE TABLE instance_secrets (
    name text PRIMARY KEY,
    value bytea NOT NULL CHECK (length(value) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
