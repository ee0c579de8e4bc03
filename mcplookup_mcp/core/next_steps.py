"""How an answer names what to do next, in the words of the interface that asked.

The rules (a claim is verified with its domain and registration id before it expires; a lost key is
replaced by claiming again with recover_ownership; a server not found is searched for) live in the
service, which writes every such sentence once. Only the name of the call differs: an MCP client is told
which tool to call, a REST client which method and path, a person on the web pages which page or button.
Each transport passes its `Steps` to the service call.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Steps:
    """Phrases that complete the service's sentences ("..., then {verify}")."""

    interface: str
    verify_claim: str  # "{domain}": check a claim's record with its registration id
    verify_again: str  # check the same claim again
    register: str  # make a claim (the registration id's origin)
    register_again: str  # start over with a new claim
    recover: str  # a new claim that takes over a verified domain
    search: str  # look for servers
    get_server: str  # "{name}": where one server's listing is read

    def verify(self, domain: str) -> str:
        return self.verify_claim.format(domain=domain)

    def server(self, name: str) -> str:
        return self.get_server.format(name=name)


MCP = Steps(
    interface="mcp",
    verify_claim="call verify_domain with domain={domain} and this registration_id",
    verify_again="call verify_domain again",
    register="register_server",
    register_again="call register_server again",
    recover="call register_server again with recover_ownership=true",
    search="search with discover_servers",
    get_server="get_server",
)

REST = Steps(
    interface="rest",
    verify_claim=(
        'POST /api/v1/verify with the body {{"domain": "{domain}", "registration_id": "<this registration_id>"}}'
    ),
    verify_again="POST /api/v1/verify again",
    register="POST /api/v1/register",
    register_again="POST /api/v1/register again",
    recover='POST /api/v1/register again with "recover_ownership": true',
    search="search with GET /api/v1/discover?q=...",
    get_server="GET /api/v1/servers/{name}",
)

WEB = Steps(
    interface="web",
    verify_claim="press Check now on this page, or open /register/verify later with {domain} and this registration id",
    verify_again="press Check now again",
    register="the claim form on /register",
    register_again="start a new claim on /register",
    recover='start a new claim on /register with "I lost the key, or the domain changed hands" ticked',
    search="search on the home page",
    get_server="its page /servers/{name}",
)
