"""How the services are reached: MCP tools and the direct discover path, REST, /v0.1, the web pages, OpenAPI, HTTP details. Imports services and below."""
