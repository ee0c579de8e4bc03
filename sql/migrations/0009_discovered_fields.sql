-- Listing fields MCPLookup filled itself (FEATURE_AUTO_DISCOVERY) because the owner left them empty:
-- field name -> where the value was read (dns:_mcp.<domain> or the server card's URL). An owner's own
-- value for a field removes its mark.
ALTER TABLE mcp_servers ADD COLUMN discovered jsonb NOT NULL DEFAULT '{}';
