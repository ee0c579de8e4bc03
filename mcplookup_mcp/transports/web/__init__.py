"""Pages for people: search, server pages, register and verify, registry figures.

Server-rendered HTML over the same service calls as /mcp and /api/v1; every read page works without
JavaScript. `routes()` is what app.py mounts, ahead of the MCP endpoint.
"""

from mcplookup_mcp.transports.web.routes import routes

__all__ = ["routes"]
