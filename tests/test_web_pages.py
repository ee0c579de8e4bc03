"""The pages for people over plain HTTP, JavaScript off: search, a server's page, figures, register/verify."""

from __future__ import annotations

import html
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import psycopg
import pytest
from conftest import Clock, LiveServer, open_service
from dnsserver import ThreadedDnsServer
from markupsafe import escape
from mcp_targets import UvicornThread
from third_party_fakes import ANKI, STDIO, anki_entry, import_entries, reader_for
from web_support import HOSTILE, HOSTILE_README, HOSTILE_TOOL, LISTING, markup_report, result_names

from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.services.service import RegistryService

pytest_plugins = ("web_fixtures",)  # the seeded database and app fixtures
LIGHTS = "control the lights at home"


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden field {name}"
    return html.unescape(found.group(1))


def block(page: str, element_id: str) -> str:
    """The text of a copyable block (<pre id=...><code>text</code>) as a person would copy it."""
    found = re.search(rf'<pre id="{element_id}"[^>]*><code>(.*?)</code></pre>', page, re.S)
    assert found, f"no block {element_id}"
    return html.unescape(found.group(1))


def assert_strict_page(response: httpx.Response) -> None:
    """Served as HTML under the strict policy, with no inline script, handler or style to need loosening it."""
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    report = markup_report(response.text)
    assert report.scripts and all(s.get("src", "").startswith("/static/") for s in report.scripts)
    assert report.inline_handlers == [] and report.styles == []


@pytest.fixture
async def seeded_service(seeded_db_url: str, settings: Settings) -> AsyncIterator[RegistryService]:
    service = await open_service(seeded_db_url, settings)
    yield service
    await service.repo.close()


async def test_search_ranks_as_discover_servers_does_and_pages_by_cursor(
    seeded: LiveServer, seeded_service: RegistryService
) -> None:
    service = seeded_service
    async with httpx.AsyncClient(base_url=seeded.base_url, timeout=20) as http:
        response = await http.get("/", params={"q": LIGHTS})
        assert response.status_code == 200
        assert_strict_page(response)
        names = result_names(response.text)
        expected = await service.discover({"query": LIGHTS, "limit": 10}, transport="test")
        assert names == [s.name for s in expected.servers]
        assert "io.github.tevonsb/homeassistant-mcp" in names[:3]
        page = response.text
        assert 'value="control the lights at home"' in page
        assert "Why it matched:" in page and "in the description" in page
        for field in ("q", "verified", "healthy", "capability", "transport"):
            assert f'<label for="{field}">' in page and f'id="{field}"' in page

        # Keyset paging: "More results" carries the cursor; its page is the REST API's second page.
        more = re.search(r'<a href="([^"]+)" rel="next">More results</a>', page)
        assert more
        next_url = html.unescape(more.group(1))
        cursor = parse_qs(urlsplit(next_url).query)["cursor"][0]
        second = await http.get(next_url)
        assert second.status_code == 200 and "First results" in second.text
        rest = (await http.get("/api/v1/discover", params={"q": LIGHTS, "cursor": cursor})).json()
        assert result_names(second.text) == [s["name"] for s in rest["servers"]]
        assert not set(result_names(second.text)) & set(names)

        # Filters mean what discover_servers' filters mean.
        response = await http.get("/", params={"q": "database", "transport": "stdio"})
        filtered = await service.discover(
            {"query": "database", "transport": "stdio", "limit": 10}, transport="test"
        )
        assert result_names(response.text) == [s.name for s in filtered.servers] != []
        assert '<option value="stdio" selected>' in response.text
        response = await http.get("/", params={"q": LIGHTS, "verified": "1"})
        assert result_names(response.text) == [] and "with these filters" in response.text


def why_lines(page: str) -> list[str]:
    """Each result's "Why it matched" line, as text."""
    return [
        html.unescape(re.sub(r"<[^>]+>", "", line))
        for line in re.findall(
            r'<p class="why"><span class="why-label">Why it matched:</span>(.*?)</p>', page
        )
    ]


async def test_search_says_how_strongly_each_result_matched_in_the_words_typed(
    seeded: LiveServer, seeded_service: RegistryService
) -> None:
    async with httpx.AsyncClient(base_url=seeded.base_url, timeout=20) as http:
        good = (await http.get("/", params={"q": "find a database for my shop"})).text
        unsure = (await http.get("/", params={"q": "track my menstrual cycle"})).text
        nothing = (await http.get("/", params={"q": "postgres"})).text
    # Each result shows its strength, the same as discover_servers'.
    answer = await seeded_service.discover(
        {"query": "find a database for my shop", "limit": 10}, transport="test"
    )
    strengths = re.findall(r'<span class="badge match-(exact|partial|weak)"', good)
    assert strengths == [s.match.strength for s in answer.servers] and "partial" in strengths
    assert "Servers for “find a database for my shop”" in good and "No confident match" not in good
    # Matched words as typed, never their stems ("databas", "shopifi").
    lines = why_lines(good)
    assert any("“database”" in line for line in lines) and any("“shop”" in line for line in lines), lines
    assert not re.search(r"databas\b|shopifi|“databas”", " ".join(lines)), lines
    # Nothing fits: a plain notice, and the results below it are guesses, each marked weak.
    assert "No confident match" in unsure and 'role="status"' in unsure
    assert "Guesses for “track my menstrual cycle”" in unsure and "Servers for" not in unsure
    assert result_names(unsure) and set(re.findall(r'match-(exact|partial|weak)"', unsure)) == {"weak"}
    assert "“menstrual”" in unsure and "Not found:" in unsure and "“cycl”" not in unsure
    # No result at all: said as plainly.
    assert result_names(nothing) == [] and "No confident match: no listed server matches" in nothing


async def test_a_bad_cursor_is_a_readable_422_page(seeded: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=seeded.base_url, timeout=20) as http:
        response = await http.get("/", params={"q": "email", "cursor": "forged.cursor"})
    assert response.status_code == 422
    assert 'role="alert"' in response.text and "cursor: not a cursor of this question" in response.text


async def test_stats_page_shows_the_registry_figures(
    seeded: LiveServer, seeded_service: RegistryService
) -> None:
    service = seeded_service
    async with httpx.AsyncClient(base_url=seeded.base_url, timeout=20) as http:
        response = await http.get("/stats")
    assert response.status_code == 200
    assert_strict_page(response)
    figures = await service.discovery.stats()
    assert f"<dt>Listed servers</dt><dd>{figures.listed_servers}</dd>" in response.text
    assert f"<dt>Imported</dt><dd>{figures.imported_servers}</dd>" in response.text
    for transport, count in figures.transports.items():
        assert f"<td>{transport}</td><td>{count}</td>" in response.text
    # Every listed server is in the table: under each transport it offers, or as not stated.
    assert figures.listed_servers == 464
    assert f"<td>not stated</td><td>{figures.servers_without_transport}</td>" in response.text
    assert sum(figures.transports.values()) + figures.servers_without_transport >= figures.listed_servers


async def test_unknown_server_is_an_html_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/servers/com.example/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "No listed server is named com.example/nothing-here." in response.text
    assert (await http.get("/static/nothing.js")).status_code == 404
    script = await http.get("/static/site.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")


# registration through the form ----------------------------------------------------------------------


async def open_form(http: httpx.AsyncClient) -> str:
    response = await http.get("/register")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    assert_strict_page(response)
    assert http.cookies.get("mcpl_csrf")
    return hidden(response.text, "csrf_token")


async def claim_via_form(http: httpx.AsyncClient, endpoint: str, **changes: str) -> httpx.Response:
    token = await open_form(http)
    form = {**LISTING, "endpoint": endpoint, "csrf_token": token, **changes}
    return await http.post("/register", data=form)


def claims(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM domain_verifications").fetchone()
    assert row is not None
    return int(row[0])


async def test_forms_refuse_posts_without_the_token_or_from_another_site(
    http: httpx.AsyncClient, db_url: str
) -> None:
    listing = {**LISTING, "endpoint": "https://mcp.example.test/mcp"}
    response = await http.post("/register", data=listing)
    assert response.status_code == 403 and "security token is missing" in response.text
    token = await open_form(http)
    response = await http.post("/register", data={**listing, "csrf_token": "x" * 43})
    assert response.status_code == 403 and "does not match" in response.text
    response = await http.post(
        "/register", data={**listing, "csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403 and "from another site" in response.text
    response = await http.post(
        "/register/verify",
        data={"domain": "example.test", "registration_id": "mcpreg_x", "csrf_token": token},
        headers={"Origin": "null"},
    )
    assert response.status_code == 403
    response = await http.post("/register", json=listing | {"csrf_token": token})
    assert response.status_code == 400
    assert claims(db_url) == 0


async def test_the_form_limit_is_max_body_bytes(
    make_live: Callable[..., LiveServer], settings: Settings, db_url: str
) -> None:
    """The pages read forms under MCPLOOKUP_MAX_BODY_BYTES, as the API reads bodies: above it and below."""
    endpoint = {"endpoint": "https://mcp.example.test/mcp"}
    small = make_live(replace(settings, max_body_bytes=4096))
    async with httpx.AsyncClient(base_url=small.base_url, timeout=20) as http:
        response = await claim_via_form(http, **endpoint, padding="x" * 5000)
        assert response.status_code == 413, response.text
        assert "larger than 4096 bytes" in html.unescape(response.text)
        assert claims(db_url) == 0
        assert (await claim_via_form(http, **endpoint, padding="x" * 1000)).status_code == 200
        assert claims(db_url) == 1
    large = make_live(replace(settings, max_body_bytes=256 * 1024))
    async with httpx.AsyncClient(base_url=large.base_url, timeout=20) as http:
        # Past the 64 KiB the pages once read whatever the setting said.
        response = await claim_via_form(http, **endpoint, slug="other", padding="x" * 100_000)
        assert response.status_code == 200, response.text
        assert claims(db_url) == 2


async def test_bytes_that_are_not_utf8_are_refused_in_searches_and_forms(
    http: httpx.AsyncClient, db_url: str
) -> None:
    for query in ("q=%ff%fe", "q=mail&transport=%ed%a0%80"):
        response = await http.get(f"/?{query}")
        assert response.status_code == 422, response.text
        assert "is not UTF-8" in html.unescape(response.text)
    token = await open_form(http)
    fields = {**LISTING, "endpoint": "https://mcp.example.test/mcp", "csrf_token": token}
    body = urlencode(fields) + "&description=%ed%a0%80"  # a lone surrogate, encoded as if UTF-8
    response = await http.post(
        "/register", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400, response.text
    assert "could not be read" in html.unescape(response.text)
    assert claims(db_url) == 0


async def test_a_bad_field_comes_back_marked_with_the_values_kept(http: httpx.AsyncClient) -> None:
    response = await claim_via_form(
        http, "https://elsewhere.example.org/mcp", api_key="mcpl_should-never-be-echoed"
    )
    assert response.status_code == 422
    page = response.text
    assert 'role="alert"' in page and "endpoint" in page
    assert re.search(r'id="f-endpoint"[^>]*aria-invalid="true"', page, re.S)
    assert 'value="https://elsewhere.example.org/mcp"' in page and 'value="example.test"' in page
    assert "mcpl_should-never-be-echoed" not in page


async def test_a_mistyped_id_returns_to_the_check_form_and_limits_say_when_to_retry(
    make_live: Callable[..., LiveServer], settings: Settings
) -> None:
    live = make_live(replace(settings, rate_limit_per_minute=2))
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        claim = await claim_via_form(http, "https://mcp.example.test/mcp")
        assert claim.status_code == 200
        check = {"domain": "example.test", "csrf_token": hidden(claim.text, "csrf_token")}
        response = await http.post("/register/verify", data=check | {"registration_id": "mcpreg_mistyped"})
        assert (
            response.status_code == 404
            and "no claim on example.test has this registration_id" in response.text
        )
        assert 'id="c-rid"' in response.text and 'value="example.test"' in response.text
        assert "mcpreg_mistyped" not in response.text
        await claim_via_form(http, "https://mcp.example.test/mcp")
        response = await claim_via_form(http, "https://mcp.example.test/mcp")
        assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
        assert "too many register requests" in response.text and 'value="example.test"' in response.text


async def probe(http: httpx.AsyncClient, clock: Clock, name: str, times: int) -> None:
    """Real probes of the target through the page's "Probe now" button, five minutes apart on the app's clock."""
    for _ in range(times):
        page = (await http.get(f"/servers/{name}")).text
        response = await http.post(f"/servers/{name}/probe", data={"csrf_token": hidden(page, "csrf_token")})
        assert response.status_code == 303 and response.headers["location"] == f"/servers/{name}?probed=1"
        assert "Probed just now" in (await http.get(response.headers["location"])).text
        clock.advance(minutes=5)


async def test_register_check_verify_then_the_server_page(
    probing_app: LiveServer,
    target: UvicornThread,
    dns: ThreadedDnsServer,
    clock: Clock,
    capfd: pytest.CaptureFixture[str],
) -> None:
    visited: list[str] = []

    async def remember(request: httpx.Request) -> None:
        visited.append(str(request.url))

    async with httpx.AsyncClient(
        base_url=probing_app.base_url, timeout=20, event_hooks={"request": [remember]}
    ) as http:
        response = await claim_via_form(http, target.url())
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        page = response.text
        record_name, record_value = block(page, "record-name"), block(page, "record-value")
        assert record_name == "_mcp-verify.example.test" and record_value.startswith("mcp-verify=")
        registration_id = block(page, "registration-id")
        assert registration_id.startswith("mcpreg_") and hidden(page, "registration_id") == registration_id
        check = {
            "domain": "example.test",
            "registration_id": registration_id,
            "csrf_token": hidden(page, "csrf_token"),
        }

        # "Check now" before publishing, from the page for coming back later with the saved id: the exact
        # DNS problem, and the button again.
        later = await http.get("/register/verify")
        assert later.headers["cache-control"] == "no-store" and 'type="password"' in later.text
        response = await http.post(
            "/register/verify", data=check | {"csrf_token": hidden(later.text, "csrf_token")}
        )
        assert response.status_code == 200
        assert "no TXT record at _mcp-verify.example.test" in response.text
        assert "attempt 1" in response.text and 'id="check-now"' in response.text
        # The next step in the page's own terms: its button, not an MCP tool or a REST route.
        assert "press Check now again" in response.text
        assert "verify_domain" not in response.text and "/api/v1/verify" not in response.text
        assert block(response.text, "record-value") == record_value

        dns.set_txt(record_name, "mcp-verify=0000000000000000000000000000000000000000")
        response = await http.post("/register/verify", data=check)
        assert "wrong value" in response.text
        assert "<code>mcp-verify=0000000000000000000000000000000000000000</code>" in response.text

        dns.set_txt(record_name, record_value)
        response = await http.post("/register/verify", data=check)
        assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
        assert_strict_page(response)
        api_key = block(response.text, "api-key")
        assert api_key.startswith("mcpl_") and "shown only this once" in response.text

        # The key is the real one: it changes the listing over REST.
        changed = await http.patch(
            "/api/v1/servers/test.example/mail",
            json={"website_url": "https://example.test/"},
            headers={"Authorization": f"Bearer {api_key}"},
        )
        assert changed.status_code == 200, changed.text
        # A further server under the verified domain needs its key, sent in the form body.
        response = await claim_via_form(http, target.url(), slug="tools", api_key="mcpl_" + "x" * 43)
        assert response.status_code == 403 and "not valid for example.test" in response.text
        assert "x" * 43 not in response.text
        response = await claim_via_form(http, target.url(), slug="tools", api_key=api_key)
        assert response.status_code == 201 and "test.example/tools is listed" in response.text
        # The claim cannot be verified twice: the page says so and offers a new claim.
        response = await http.post("/register/verify", data=check)
        assert response.status_code == 409 and "already verified" in response.text
        assert 'href="/register"' in response.text and 'id="check-now"' not in response.text

        await probe(http, clock, "test.example/mail", 3)
        # Once per server every 30 seconds: a second press at once is refused on the page, with the wait.
        clock.advance(minutes=-5, seconds=1)
        page = (await http.get("/servers/test.example/mail")).text
        refused = await http.post(
            "/servers/test.example/mail/probe", data={"csrf_token": hidden(page, "csrf_token")}
        )
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert "retry in" in refused.text and 'id="probe-notice"' in refused.text
        assert (await http.post("/servers/test.example/mail/probe", data={})).status_code == 403
        clock.advance(minutes=5)
        target.stop()
        await probe(http, clock, "test.example/mail", 1)

        response = await http.get("/servers/test.example/mail")
        assert response.status_code == 200
        assert_strict_page(response)
        page = response.text

    # Operator-written text arrives escaped, never as markup.
    assert "<script>window.__xss" not in page and "<img src=x" not in page
    assert str(escape(HOSTILE)) in page
    assert str(escape(HOSTILE_TOOL)) in page
    assert "Description by the server's operator" in page and "treat them as data" in page
    assert '<code class="tool-name">send_message</code>' in page
    # Everything get_server returns, in words.
    for fact in (
        "<code>test.example/mail</code>",
        "verified by its DNS record",
        '>email</a>, <a href="/?capability=search"',
        '<a href="/?category=communication"',
        f"<code>{target.url()}</code>",
        "Uptime, 24 hours</dt><dd>75.0% of 4 probes",
        "domain verified",
        "https://example.test/",
        '<a href="/servers/test.example/tools"><code>test.example/tools</code></a>',
    ):
        assert fact in page, fact
    # The chart, from the hourly roll-up: the four probes fell in one hour, so one bar (some probes down)
    # and one dot for the hour's mean handshake latency.
    assert re.findall(r'<rect class="probe (\w+)"', page) == ["warn"]
    assert page.count('class="latency-dot"') == 1
    assert "4 probes from 2026-01-05 12:00 to 2026-01-05 13:00 UTC: 3 up, 1 down" in page
    assert "2026-01-05 12:00-13:00 UTC: 3 of 4 probes up (75.0%)" in page
    # Connection snippets for this endpoint.
    assert block(page, "snippet-claude") == f"claude mcp add --transport http mail {target.url()}"
    assert json.loads(block(page, "snippet-cursor")) == {"mcpServers": {"mail": {"url": target.url()}}}
    assert json.loads(block(page, "snippet-vscode")) == {
        "servers": {"mail": {"type": "http", "url": target.url()}}
    }
    assert '"method":"initialize"' in block(page, "snippet-curl")

    # No secret in any URL the client asked for, nor in anything the server logged.
    assert visited and not any(api_key in url or registration_id in url for url in visited)
    logged = capfd.readouterr()
    assert api_key not in logged.out + logged.err and registration_id not in logged.out + logged.err


def test_imported_package_snippets_quote_what_the_operator_wrote() -> None:
    from datetime import UTC, datetime

    from mcplookup_mcp.core.models import HealthSummary, ServerOut
    from mcplookup_mcp.transports.web.snippets import connection_snippets

    now = datetime.now(UTC)
    server = ServerOut(
        name="io.github.someone/Tool; rm -rf ~",
        description="",
        capabilities=[],
        auth_type="none",
        source="import",
        listing_status="active",
        verified=False,
        pending=False,
        imported=True,
        health=HealthSummary(status="unknown"),
        trust_score=0,
        created_at=now,
        updated_at=now,
        packages=[
            {
                "registryType": "npm",
                "identifier": "@someone/tool$(id)",
                "version": "1.2.0",
                "environmentVariables": [{"name": "API_KEY"}, {"name": "BAD NAME; x"}],
            }
        ],
    )
    snippets = {s.key: s.text for s in connection_snippets(server, "https://mcplookup.example").items}
    assert (
        snippets["claude"] == "claude mcp add tool-rm-rf -e API_KEY=... -- npx -y '@someone/tool$(id)@1.2.0'"
    )
    stdio = {"command": "npx", "args": ["-y", "@someone/tool$(id)@1.2.0"], "env": {"API_KEY": "..."}}
    assert json.loads(snippets["claude-desktop"]) == {"mcpServers": {"tool-rm-rf": stdio}}
    assert json.loads(snippets["cursor"]) == {"mcpServers": {"tool-rm-rf": stdio}}
    assert json.loads(snippets["vscode"]) == {"servers": {"tool-rm-rf": {"type": "stdio", **stdio}}}
    assert snippets["lookup"] == (
        "curl -s 'https://mcplookup.example/api/v1/servers/io.github.someone/Tool%3B%20rm%20-rf%20~'"
    )


async def test_server_page_quotes_the_readme_escaped_and_marked_with_package_facts_and_browse_links(
    service: RegistryService, settings: Settings, make_live: Callable[..., LiveServer], db_url: str
) -> None:
    from third_party_fakes import Answer, FakeSources, settings_for, start_fake

    sources = FakeSources()
    sources.readme("scorzeth/anki-mcp-server", HOSTILE_README)
    sources.answers["/anki-mcp/latest"] = Answer(
        {
            "description": "Anki <b>decks</b>",
            "keywords": ["srs"],
            "license": "MIT",
            "engines": {"node": ">=20"},
        }
    )
    fake = start_fake(sources)
    try:
        await import_entries(
            service,
            anki_entry(
                packages=[{"registryType": "npm", "identifier": "anki-mcp", "version": "2.0.0", **STDIO}],
            ),
        )
        app_settings = settings_for(settings, fake)
        await reader_for(service, app_settings).refresh(ANKI)
    finally:
        fake.stop()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE mcp_servers SET category = 'education', capabilities = '{flashcards}' WHERE name = %s",
            (ANKI,),
        )
    live = make_live(app_settings)
    async with httpx.AsyncClient(base_url=live.base_url, timeout=20) as http:
        response = await http.get(f"/servers/{ANKI}")
        assert response.status_code == 200
        assert_strict_page(response)
        page = response.text
        # The README's words, as text: no tag of it survives, and it is marked as someone else's.
        assert "From the README" in page and "not by its operator nor by MCPLookup" in page
        assert "Makes flashcards" in page and "from your notes." in page
        assert "__readme_xss" not in page and "onerror" not in page
        assert markup_report(page).inline_handlers == []
        assert "Anki &lt;b&gt;decks&lt;/b&gt;" in page and "Keywords: srs" in page
        assert "<dt>License</dt><dd>MIT" in page and "JavaScript, Node.js &gt;=20" in page
        assert "<dt>Last updated</dt>" in page
        # Browse: the server's category and capabilities are links to the filtered search.
        assert '<a href="/?category=education"' in page and '<a href="/?capability=flashcards"' in page
        browse = await http.get("/?category=education")
        assert browse.status_code == 200 and ANKI in result_names(browse.text)
        assert ANKI not in result_names((await http.get("/?category=finance")).text)
        stats = await http.get("/stats")
        assert '<a href="/?category=education">education</a>' in stats.text
        # The same facts over REST.
        rest = (await http.get(f"/api/v1/servers/{ANKI}")).json()
        assert rest["license"] == "MIT" and rest["third_party"]["untrusted"] is True
        assert rest["third_party"]["readme"]["excerpt"][0] == "Flashcard helper"
        assert rest["server"]["description"] == "An MCP server for Anki"


def test_each_client_gets_its_own_configuration_shape() -> None:
    from datetime import UTC, datetime

    from mcplookup_mcp.core.models import HealthSummary, ServerOut
    from mcplookup_mcp.transports.web.snippets import connection_snippets

    now = datetime.now(UTC)
    base = {
        "description": "",
        "capabilities": [],
        "auth_type": "none",
        "source": "import",
        "listing_status": "active",
        "verified": False,
        "pending": False,
        "imported": True,
        "health": HealthSummary(status="unknown"),
        "trust_score": 0,
        "created_at": now,
        "updated_at": now,
    }

    def snippets(**fields: object) -> dict[str, str]:
        server = ServerOut(**(base | fields))  # type: ignore[arg-type]
        return {s.key: s.text for s in connection_snippets(server, "https://mcplookup.example").items}

    sse = snippets(name="com.example/feed", endpoint="https://example.com/sse", transport="sse")
    assert sse["claude"] == "claude mcp add --transport sse feed https://example.com/sse"
    assert json.loads(sse["claude-desktop"]) == {
        "mcpServers": {
            "feed": {
                "command": "npx",
                "args": ["-y", "mcp-remote", "https://example.com/sse", "--transport", "sse-only"],
            }
        }
    }
    assert json.loads(sse["cursor"]) == {"mcpServers": {"feed": {"url": "https://example.com/sse"}}}
    assert json.loads(sse["vscode"]) == {
        "servers": {"feed": {"type": "sse", "url": "https://example.com/sse"}}
    }

    pypi = snippets(
        name="io.github.x/weather", packages=[{"registryType": "pypi", "identifier": "weather-mcp"}]
    )
    assert pypi["claude"] == "claude mcp add weather -- uvx weather-mcp"
    assert json.loads(pypi["vscode"]) == {
        "servers": {"weather": {"type": "stdio", "command": "uvx", "args": ["weather-mcp"]}}
    }

    oci = snippets(
        name="io.github.x/db",
        packages=[
            {
                "registryType": "oci",
                "identifier": "docker.io/x/db:1",
                "environmentVariables": [{"name": "DB_URL"}],
            }
        ],
    )
    desktop = json.loads(oci["claude-desktop"])["mcpServers"]["db"]
    # docker hands the container only the variables its -e flags name.
    assert desktop == {
        "command": "docker",
        "args": ["run", "-i", "--rm", "-e", "DB_URL", "docker.io/x/db:1"],
        "env": {"DB_URL": "..."},
    }
