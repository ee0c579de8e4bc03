"""Shared parts of the web page tests: a probe target with hostile tool text, HTML helpers, headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import REQUIRE_SERVICES
from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
HOSTILE = '<script>window.__xss = "description"</script><img src=x onerror="window.__xss = 1">'
HOSTILE_TOOL = 'Send a message. <script>window.__xss = "tool"</script><b onmouseover="x()">bold</b>'
LISTING = {
    "domain": "example.test",
    "slug": "mail",
    "title": "Example Mail",
    "description": f"Send, search and read email in your mailbox. {HOSTILE}",
    "capabilities": "email, search",
    "category": "communication",
}


def hostile_target_app() -> Starlette:
    """A real MCP server whose tool description holds markup, as a careless or hostile operator's might."""
    mcp = MCPServer("hostile-target", version="1.0")

    @mcp.tool(description=HOSTILE_TOOL)
    def send_message(to: str, text: str) -> str:
        return f"sent to {to}"

    return mcp.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )


_RESULT = re.compile(r'<li class="result">\s*<h3><a href="/servers/([^"]+)"')


def result_names(html: str) -> list[str]:
    return _RESULT.findall(html)


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_handlers: list[str] = []
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
        if tag == "style":
            self.styles.append(tag)
        for name, _ in attrs:
            if name.startswith("on"):
                self.inline_handlers.append(f"{tag} {name}")
            if name == "style":
                self.styles.append(f"{tag} style=")


def markup_report(html: str) -> _Scripts:
    """Every <script> tag with its attributes, and any inline event handler or style in the page."""
    parser = _Scripts()
    parser.feed(html)
    return parser


def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: MCPLOOKUP_TEST_ARTIFACTS when set, else a pytest temporary directory."""
    given = os.environ.get("MCPLOOKUP_TEST_ARTIFACTS")
    path = Path(given) / "web" if given else tmp_path_factory.mktemp("web-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nweb page screenshots: {path}")
    return path


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """Debian's Chromium, headless, driven through Debian's chromedriver (Selenium Manager never runs)."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        if REQUIRE_SERVICES:
            pytest.fail(f"MCPLOOKUP_REQUIRE_SERVICES=1 and {CHROMIUM} or {CHROMEDRIVER} is missing")
        pytest.skip("chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def full_page_screenshot(driver: Any, path: Path, width: int = 1280) -> None:
    """A screenshot of the whole page at `width` CSS pixels (headless Chromium grows the window to fit)."""
    before = driver.get_window_size()
    driver.set_window_size(width, 900)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(width, min(max(height + 100, 600), 8000))
    driver.save_screenshot(str(path))
    driver.set_window_size(before["width"], before["height"])


HOSTILE_README = """<p align="center"><img src="x" onerror="window.__readme_xss=1"></p>

# Flashcard helper

Makes flashcards </p><script>window.__readme_xss=2</script> from your notes.
"""
