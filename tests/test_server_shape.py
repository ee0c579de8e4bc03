"""One server, one shape: every surface that answers with a listed server tells the same facts about it."""

from __future__ import annotations

from urllib.parse import quote

from conftest import LiveServer, mcp_client
from dnsserver import ThreadedDnsServer
from listing_support import add, sql
from registration_support import claim_and_verify, structured
from registry_schema import registry_client

from mcplookup_mcp.services.service import RegistryService

NAME = "test.example/mail"


async def test_blocked_remotes_are_reported_on_every_surface(
    live: LiveServer, service: RegistryService, dns: ThreadedDnsServer, db_url: str
) -> None:
    api_key = await claim_and_verify(service, dns)
    sql(db_url, "UPDATE mcp_servers SET remotes_blocked = true WHERE name = %s", NAME)

    assert (await service.get_server({"name": NAME})).server.remotes_blocked is True
    assert (await service.get_server({"domain": "example.test"})).server.remotes_blocked is True
    async with mcp_client(live.base_url, api_key) as client:
        by_name = structured(await client.call_tool("get_server", {"name": NAME}))
        by_domain = structured(await client.call_tool("get_server", {"domain": "example.test"}))
        updated = structured(
            await client.call_tool("update_server", {"name": NAME, "title": "Mail, changed over MCP"})
        )
    assert by_name["server"]["remotes_blocked"] is True
    assert by_domain["server"]["remotes_blocked"] is True
    assert updated["server"]["remotes_blocked"] is True
    async with registry_client(live.base_url) as http:
        rest = (await http.get(f"/api/v1/servers/{NAME}")).json()
        rest_domain = (await http.get("/api/v1/domains/example.test")).json()
        patched = (
            await http.patch(
                f"/api/v1/servers/{NAME}",
                json={"title": "Mail, changed over REST"},
                headers={"Authorization": f"Bearer {api_key}"},
            )
        ).json()
        registry = (await http.get(f"/v0.1/servers/{quote(NAME, safe='')}/versions/latest")).json()
    assert rest["server"]["remotes_blocked"] is True
    assert rest_domain["server"]["remotes_blocked"] is True
    assert patched["server"]["remotes_blocked"] is True
    assert registry["_meta"]["org.mcplookup/discovery"]["remotesBlocked"] is True


async def test_an_unblocked_server_says_so(service: RegistryService, dns: ThreadedDnsServer) -> None:
    await claim_and_verify(service, dns)
    assert (await service.get_server({"name": NAME})).server.remotes_blocked is False


async def test_listed_count_matches_the_stats(service: RegistryService, db_url: str) -> None:
    add(db_url, "io.github.a/listed", source="import")
    add(db_url, "com.acme/verified", source="register", verified=True, domain="acme.com")
    # Active but neither verified nor imported: its domain lost verification, so it is not listed.
    add(db_url, "com.lapsed/mail", source="register", verified=False, domain="lapsed.com")
    add(db_url, "io.github.a/gone", source="import", status="deleted")
    stats = await service.discovery.stats()
    assert stats.listed_servers == 2
    assert await service.listed_server_count() == stats.listed_servers
