"""The pages in headless Chromium: search the seed, open a server, register and verify a domain end to end.

Screenshots of every page are saved (the directory is printed; MCPLOOKUP_TEST_ARTIFACTS chooses it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Clock, LiveServer
from dnsserver import ThreadedDnsServer
from mcp_targets import UvicornThread
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from third_party_fakes import ANKI, STDIO, anki_entry, import_entries, reader_for
from web_support import (
    HOSTILE,
    HOSTILE_README,
    HOSTILE_TOOL,
    LISTING,
    artifacts_dir,
    chromium,
    full_page_screenshot,
)

from mcplookup_mcp.core.settings import Settings

pytest_plugins = ("web_fixtures",)
pytestmark = pytest.mark.slow

GMAIL = {
    "io.github.gongrzhe/gmail-mcp-server",
    "io.github.baryhuang/mcp-headless-gmail",
    "io.github.zilongxue/claude-post",
    "io.github.shy2593666979/mcp-server-email",
}


@pytest.fixture(scope="module")
def screens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return artifacts_dir(tmp_path_factory)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


def wait_for(driver: Any, css: str, timeout: float = 15) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def by_css(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def all_css(driver: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, css))


def console_problems(driver: Any) -> list[str]:
    """Errors the page raised, CSP refusals included (our own files must never be refused)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def assert_styled_and_scripted(driver: Any) -> None:
    # The stylesheet applied and the script ran, both under the strict policy.
    border = driver.execute_script(
        "return getComputedStyle(document.querySelector('header.site')).borderBottomStyle"
    )
    assert border == "solid"
    buttons = all_css(driver, "button[data-copy]")
    assert all(button.is_displayed() for button in buttons)


def fits_phone(driver: Any) -> bool:
    return bool(driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"))


def test_search_the_seed_then_open_the_server(browser: Any, seeded: LiveServer, screens: Path) -> None:
    from selenium.webdriver.common.keys import Keys

    browser.get(seeded.base_url + "/")
    wait_for(browser, "#q")
    # Keyboard only: the search box, each filter and the button are reached with Tab.
    reached: list[str] = []
    body = by_css(browser, "body")
    body.send_keys(Keys.TAB)
    for _ in range(14):
        active = browser.switch_to.active_element
        reached.append(active.get_attribute("id") or active.tag_name + ":" + (active.text or ""))
        active.send_keys(Keys.TAB)
    for expected in ("q", "verified", "healthy", "capability", "category", "transport", "button:Search"):
        assert expected in reached, reached

    box = by_css(browser, "#q")
    box.send_keys("send an email from my gmail", Keys.ENTER)
    wait_for(browser, "ol.results li.result")
    assert "q=send+an+email+from+my+gmail" in browser.current_url
    top = [a.get_attribute("href").split("/servers/", 1)[1] for a in all_css(browser, "li.result h3 a")][:5]
    assert GMAIL & set(top), top
    assert "Why it matched:" in by_css(browser, "li.result .why").text
    assert_styled_and_scripted(browser)
    full_page_screenshot(browser, screens / "search.png")

    browser.set_window_size(390, 844)
    assert fits_phone(browser)
    browser.save_screenshot(str(screens / "search-phone.png"))
    browser.set_window_size(1280, 900)

    first = next(
        a
        for a in all_css(browser, "li.result h3 a")
        if a.get_attribute("href").split("/servers/")[1] in GMAIL
    )
    name = first.get_attribute("href").split("/servers/", 1)[1]
    first.click()
    wait_for(browser, "article.server h1")
    assert browser.current_url.endswith(f"/servers/{name}")
    assert name in by_css(browser, ".server-head .name").text
    # Most seed entries name no package or remote: the page still offers this listing's lookup.
    assert by_css(browser, "#snippet-lookup").text.endswith(f"/api/v1/servers/{name}")
    assert_styled_and_scripted(browser)
    full_page_screenshot(browser, screens / "server-imported.png")

    browser.get(seeded.base_url + "/stats")
    wait_for(browser, "dl.figures")
    assert int(by_css(browser, "dl.figures dd").text) > 400
    full_page_screenshot(browser, screens / "stats.png")
    assert console_problems(browser) == []


def test_search_shows_strength_and_says_when_nothing_fits(
    browser: Any, seeded: LiveServer, screens: Path
) -> None:
    from selenium.webdriver.common.keys import Keys

    browser.get(seeded.base_url + "/")
    by_css(browser, "#q").send_keys("find a database for my shop", Keys.ENTER)
    wait_for(browser, "ol.results li.result")
    badges = [b.text for b in all_css(browser, "li.result .badge[class*=match-]")]
    assert badges and len(badges) == len(all_css(browser, "li.result")) and "partial match" in badges, badges
    assert all_css(browser, ".notice") == []
    assert by_css(browser, "#results-heading").text.startswith("Servers for")
    why = " ".join(p.text for p in all_css(browser, "li.result .why"))
    assert "“database”" in why and "“shop”" in why and "databas”" not in why and "shopifi" not in why, why
    # A confident badge is drawn solid; a weak one, below, dashed.
    assert (
        browser.execute_script(
            "return getComputedStyle(document.querySelector('.badge.match-partial')).borderTopStyle"
        )
        == "solid"
    )
    assert_styled_and_scripted(browser)
    full_page_screenshot(browser, screens / "search-strength.png")

    box = by_css(browser, "#q")
    box.clear()
    box.send_keys("track my menstrual cycle", Keys.ENTER)
    wait_for(browser, ".notice")
    notice = by_css(browser, ".notice")
    assert notice.is_displayed() and notice.text.startswith("No confident match")
    assert by_css(browser, "#results-heading").text.startswith("Guesses for")
    assert {b.text for b in all_css(browser, "li.result .badge[class*=match-]")} == {"weak: a guess"}
    assert (
        browser.execute_script(
            "return getComputedStyle(document.querySelector('.badge.match-weak')).borderTopStyle"
        )
        == "dashed"
    )
    assert "Not found: “menstrual”, “cycle”" in by_css(browser, "li.result").text
    assert console_problems(browser) == []
    full_page_screenshot(browser, screens / "search-no-confident-match.png")
    browser.set_window_size(390, 844)
    assert fits_phone(browser)
    browser.save_screenshot(str(screens / "search-no-confident-match-phone.png"))
    browser.set_window_size(1280, 900)


def fill(driver: Any, field_id: str, value: str) -> None:
    element = by_css(driver, f"#{field_id}")
    element.clear()
    element.send_keys(value)


def clipboard_after_copy(driver: Any, block_id: str) -> str:
    """Press the block's Copy button and read the clipboard back."""
    by_css(driver, f'button[data-copy="{block_id}"]').click()
    return str(
        driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "navigator.clipboard.readText().then(done, (e) => done('unreadable: ' + e));"
        )
    )


def test_register_and_verify_a_domain_in_the_browser(
    browser: Any,
    probing_app: LiveServer,
    target: UvicornThread,
    dns: ThreadedDnsServer,
    clock: Clock,
    screens: Path,
) -> None:
    base = probing_app.base_url
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": base, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    browser.get(base + "/servers/com.example/nothing-here")
    wait_for(browser, "p.problem")
    full_page_screenshot(browser, screens / "not-found.png")
    # The page's own 404 is the one console entry expected (reading the log empties it).
    assert [p for p in console_problems(browser) if "404" not in p] == []
    browser.get(base + "/register/verify")
    wait_for(browser, "#c-rid")
    full_page_screenshot(browser, screens / "register-check-later.png")
    browser.get(base + "/register")
    wait_for(browser, "form.register")
    # Every field has a label the browser ties to it.
    for field in all_css(
        browser, "form.register input:not([type=hidden]), form.register select, form.register textarea"
    ):
        field_id = field.get_attribute("id")
        assert all_css(browser, f'label[for="{field_id}"]'), field_id
    fill(browser, "f-domain", LISTING["domain"])
    fill(browser, "f-slug", LISTING["slug"])
    fill(browser, "f-endpoint", target.url())
    fill(browser, "f-title", LISTING["title"])
    fill(browser, "f-description", LISTING["description"])
    fill(browser, "f-capabilities", LISTING["capabilities"])
    fill(browser, "f-category", LISTING["category"])
    full_page_screenshot(browser, screens / "register-form.png")
    by_css(browser, "form.register button[type=submit]").click()

    wait_for(browser, "#record-value")
    record_name = by_css(browser, "#record-name").text
    record_value = by_css(browser, "#record-value").text
    assert record_name == "_mcp-verify.example.test" and record_value.startswith("mcp-verify=")
    assert clipboard_after_copy(browser, "record-value") == record_value
    assert by_css(browser, 'button[data-copy="record-value"]').text == "Copied"
    full_page_screenshot(browser, screens / "register-claim.png")

    # Check now, before the record exists: the exact DNS problem.
    by_css(browser, "#check-now").click()
    wait_for(browser, "#check-result")
    problem = by_css(browser, "#check-result").text
    assert "no TXT record at _mcp-verify.example.test" in problem and record_value in problem
    full_page_screenshot(browser, screens / "register-check-failed.png")

    dns.set_txt(record_name, record_value)
    by_css(browser, "#check-now").click()
    wait_for(browser, "#api-key")
    api_key = by_css(browser, "#api-key").text
    assert api_key.startswith("mcpl_")
    assert "shown only this once" in by_css(browser, ".key-box .warning").text
    assert api_key not in browser.current_url
    assert clipboard_after_copy(browser, "api-key") == api_key
    full_page_screenshot(browser, screens / "register-verified.png")

    # The server's page; real probes with its "Probe now" button, an hour apart on the app's clock, so each
    # is a bar of its own in the chart (one per hour, from the roll-ups).
    by_css(browser, "p.success a").click()
    wait_for(browser, "article.server h1")
    assert "Not probed yet" in by_css(browser, "#health-heading").find_element("xpath", "..").text
    for _ in range(4):
        button = by_css(browser, "#probe-now")
        button.click()
        # The click loads a new page: wait for the old one to go first, or the last round's notice,
        # still on it, is found and then goes stale mid-read. While the old document is torn down
        # Chromium may answer "Node with given id does not belong to the document" instead of "stale":
        # asked again, it says stale.
        WebDriverWait(browser, 15, ignored_exceptions=(WebDriverException,)).until(
            expected_conditions.staleness_of(button)
        )
        notice = wait_for(browser, "#probe-notice")
        assert "Probed just now" in notice.text
        clock.advance(hours=1)
    assert by_css(browser, "article.server h1").text == "Example Mail"
    # Operator text is shown as text: the markup is visible and nothing in it ran.
    assert HOSTILE in by_css(browser, ".server-head .description").text
    assert HOSTILE_TOOL in by_css(browser, ".tool-description").text
    assert browser.execute_script("return window.__xss === undefined")
    assert all_css(browser, ".server-head .description img, .server-head .description script") == []
    assert len(all_css(browser, "figure.chart rect.probe.ok")) == 4
    assert all_css(browser, "figure.chart polyline.latency")
    assert_styled_and_scripted(browser)
    full_page_screenshot(browser, screens / "server-registered.png")
    browser.set_window_size(390, 844)
    assert fits_phone(browser)
    full_page_screenshot(browser, screens / "server-registered-phone.png", width=390)
    browser.set_window_size(1280, 900)
    assert console_problems(browser) == []


async def test_a_server_page_with_its_readme_package_facts_and_client_snippets(
    browser: Any,
    service: Any,
    settings: Settings,
    make_live: Callable[..., LiveServer],
    db_url: str,
    screens: Path,
) -> None:
    import psycopg
    from third_party_fakes import Answer, FakeSources, settings_for, start_fake

    sources = FakeSources()
    sources.readme(
        "scorzeth/anki-mcp-server",
        HOSTILE_README + "\nReview due cards with spaced repetition, add notes to decks and sync them.\n",
    )
    sources.answers["/anki-mcp/latest"] = Answer(
        {
            "description": "Anki flashcards for your assistant",
            "keywords": ["anki", "srs", "flashcards"],
            "license": "MIT",
            "types": "dist/index.d.ts",
            "engines": {"node": ">=20"},
        }
    )
    fake = start_fake(sources)
    try:
        await import_entries(
            service,
            anki_entry(
                packages=[{"registryType": "npm", "identifier": "anki-mcp", "version": "2.0.0", **STDIO}]
            ),
        )
        app_settings = settings_for(settings, fake)
        await reader_for(service, app_settings).refresh(ANKI)
    finally:
        fake.stop()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE mcp_servers SET category = 'education', capabilities = '{flashcards,study}' WHERE name = %s",
            (ANKI,),
        )
    live = make_live(app_settings)

    browser.get(f"{live.base_url}/servers/{ANKI}")
    wait_for(browser, "#readme-heading")
    excerpt = by_css(browser, ".readme-excerpt").text
    assert "Makes flashcards" in excerpt and "spaced repetition" in excerpt
    assert "never as instructions" in by_css(browser, ".third-party-mark").text
    # The README's script and handler never ran: they reached the page as nothing at all.
    assert browser.execute_script("return window.__readme_xss === undefined")
    for key in ("claude", "claude-desktop", "cursor", "vscode"):
        assert by_css(browser, f"#snippet-{key}").is_displayed(), key
    assert '"servers"' in by_css(browser, "#snippet-vscode").text
    listing = by_css(browser, "section[aria-labelledby=listing-heading]").text
    assert "MIT" in listing and "TypeScript, Node.js >=20" in listing
    assert_styled_and_scripted(browser)
    assert console_problems(browser) == []
    full_page_screenshot(browser, screens / "server-readme.png")
    browser.set_window_size(390, 844)
    assert fits_phone(browser)
    browser.save_screenshot(str(screens / "server-readme-phone.png"))
    browser.set_window_size(1280, 900)

    by_css(browser, 'a[href="/?category=education"]').click()
    wait_for(browser, "ol.results li.result")
    assert "category=education" in browser.current_url
    names = [a.get_attribute("href").split("/servers/", 1)[1] for a in all_css(browser, "li.result h3 a")]
    assert names == [ANKI]
    assert by_css(browser, "#category").get_attribute("value") == "education"
