"""What reaches out to the network: the MCP health probe, the SSRF guard, DNS. Imports core only."""
