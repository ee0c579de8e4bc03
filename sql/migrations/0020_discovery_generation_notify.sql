-- The discovery generation reaches every replica by a push: each process LISTENs on this channel
-- (store/generation_feed.py) and reads the sequence when told, instead of reading it before every
-- cached answer. NOTIFY is delivered when the writing transaction commits, so the new value is known
-- only once the rows that moved it are visible; identical notifications of one transaction are folded
-- into one, so a bulk import sends one, not one per row.
CREATE OR REPLACE FUNCTION mcp_servers_discovery_generation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nextval('discovery_generation');
    PERFORM pg_notify('mcplookup_discovery_generation', '');
    RETURN NULL;
END
$$;
