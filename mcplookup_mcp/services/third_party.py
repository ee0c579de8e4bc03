"""What others publish about a listed server: its repository's README and its npm and PyPI packages'
registry entries. Read on a schedule by the leader, stored apart from the owner's listing
(`server_third_party`), shown marked as third-party text and indexed at the search document's lowest
weight (migration 0016).

Every fetch goes through the prober's SSRF guard (`probe/text_fetch.py`) with the prober's policy. A
failed fetch stores nothing and keeps what an earlier one stored; a 304 to `If-None-Match` confirms it.
Nothing read here is trusted: control and bidirectional-override characters are removed, every field is
capped, an HTML document served where Markdown is expected is refused, and pages escape all of it.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit
from uuid import UUID

import dns.asyncresolver
import structlog

from mcplookup_mcp.core.errors import NotFound, RegistryError
from mcplookup_mcp.core.metrics import THIRD_PARTY_READS
from mcplookup_mcp.core.models import PackageInfoOut, ReadmeOut, ThirdPartyText
from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.probe.text_fetch import Fetched, FetchFailed, FetchLimits, fetch_document
from mcplookup_mcp.services.monitor import probe_policy
from mcplookup_mcp.store.repository import Repository, Row

log = structlog.get_logger("mcplookup.third_party")

README_NAMES = ("README.md", "readme.md")
MAX_README_CHARS = 100_000
MAX_PACKAGE_BYTES = 2 * 1024 * 1024
MAX_DESCRIPTION_CHARS = 2_000
MAX_KEYWORDS = 30
MAX_KEYWORD_CHARS = 50
MAX_FACT_CHARS = 100
PACKAGES_PER_SERVER = 5
EXCERPT_CHARS = 1_200
BATCH = 16
CONCURRENCY = 4
# Newly listed servers get their schedule row this often: the anti-join reads every listing.
SCHEDULE_EVERY = timedelta(minutes=5)
# A claimed server not finished within this long (its replica died) is due again.
LEASE = timedelta(minutes=10)

_GITHUB_PATH = re.compile(r"^/([A-Za-z0-9][A-Za-z0-9-]{0,38})/([A-Za-z0-9._-]{1,100}?)(?:\.git)?/?$")
_NPM_NAME = re.compile(r"^(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")
_PYPI_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_HTML_DOCUMENT = re.compile(rb"^\s*(?:<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>])", re.IGNORECASE)
# Bidirectional overrides and isolates reorder what a reader sees; zero-width characters hide words.
_INVISIBLE = dict.fromkeys(
    [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF], None
)


class NotMarkdown(ValueError):
    """An HTML document was served where a Markdown README was expected."""


@dataclass(frozen=True)
class PackageFacts:
    description: str | None
    keywords: list[str]
    license: str | None
    language: str | None


@dataclass
class RefreshSummary:
    """One server's round: which sources were read (200), confirmed (304), absent (404) or failed."""

    name: str
    read: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


# --- what the text is and where it is --------------------------------------------------------------


def github_repository(url: object) -> tuple[str, str] | None:
    """(owner, repo) of a https://github.com/owner/repo URL, else None (other hosts have no raw base)."""
    if not isinstance(url, str) or len(url) > 300:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or parts.hostname not in ("github.com", "www.github.com"):
        return None
    match = _GITHUB_PATH.match(parts.path)
    return (match.group(1), match.group(2)) if match else None


def readme_urls(base: str, owner: str, repo: str) -> list[str]:
    """The README's candidate URLs on the repository's default branch (HEAD), most common name first."""
    return [f"{base}/{owner}/{repo}/HEAD/{name}" for name in README_NAMES]


def npm_document_url(base: str, name: str) -> str | None:
    """The registry document of the package's latest version (far smaller than the whole packument)."""
    if len(name) > 214 or not _NPM_NAME.match(name):
        return None
    return f"{base}/{quote(name, safe='@')}/latest"


def pypi_document_url(base: str, name: str) -> str | None:
    if len(name) > 200 or not _PYPI_NAME.match(name):
        return None
    return f"{base}/pypi/{name}/json"


def clean_text(text: str) -> str:
    """Third-party text without control, bidirectional-override or zero-width characters; newlines kept."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    return "".join(c for c in text if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cs", "Co"))


def clean_markdown(body: bytes, content_type: str) -> tuple[str, bool]:
    """A README's text, cleaned and capped; (text, truncated). Markdown stays Markdown (pages escape it)."""
    if content_type in ("text/html", "application/xhtml+xml") or _HTML_DOCUMENT.match(body[:512]):
        raise NotMarkdown("an HTML document was served where a Markdown README was expected")
    text = clean_text(body.decode("utf-8", errors="replace")).strip()
    if len(text) > MAX_README_CHARS:
        return text[:MAX_README_CHARS], True
    return text, False


def _line(value: object, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(clean_text(value).split())
    if not text:
        return None
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _keywords(values: object) -> list[str]:
    if isinstance(values, str):
        values = re.split(r"[,\s]+", values)
    if not isinstance(values, list):
        return []
    found: list[str] = []
    for value in values:
        word = _line(value, MAX_KEYWORD_CHARS)
        if word and word.lower() not in (w.lower() for w in found):
            found.append(word)
        if len(found) == MAX_KEYWORDS:
            break
    return found


def npm_facts(doc: object) -> PackageFacts:
    """What an npm version document states: description, keywords, license, runtime."""
    if not isinstance(doc, dict):
        raise ValueError("the npm registry's answer is not a JSON object")
    license_ = doc.get("license")
    if isinstance(license_, dict):
        license_ = license_.get("type")
    engines = doc.get("engines") if isinstance(doc.get("engines"), dict) else {}
    assert isinstance(engines, dict)
    node = _line(engines.get("node"), 40)
    typed = any(isinstance(doc.get(k), str) for k in ("types", "typings"))
    language = ("TypeScript" if typed else "JavaScript") + (f", Node.js {node}" if node else ", Node.js")
    return PackageFacts(
        description=_line(doc.get("description"), MAX_DESCRIPTION_CHARS),
        keywords=_keywords(doc.get("keywords")),
        license=_line(license_, MAX_FACT_CHARS),
        language=language,
    )


def pypi_facts(doc: object) -> PackageFacts:
    """What PyPI's JSON API states: summary, keywords, license (expression, field or classifier)."""
    info = doc.get("info") if isinstance(doc, dict) else None
    if not isinstance(info, dict):
        raise ValueError("PyPI's answer has no info object")
    classifiers = [c for c in info.get("classifiers") or [] if isinstance(c, str)]
    license_ = _line(info.get("license_expression"), MAX_FACT_CHARS)
    stated = info.get("license")
    # The license field often holds a whole license text; only a short one names the license.
    if license_ is None and isinstance(stated, str) and 0 < len(stated.strip()) <= MAX_FACT_CHARS:
        license_ = _line(stated, MAX_FACT_CHARS)
    if license_ is None:
        named = [c.rsplit("::", 1)[-1].strip() for c in classifiers if c.startswith("License ::")]
        license_ = _line(named[0], MAX_FACT_CHARS) if named else None
    python = _line(info.get("requires_python"), 40)
    return PackageFacts(
        description=_line(info.get("summary"), MAX_DESCRIPTION_CHARS),
        keywords=_keywords(info.get("keywords")),
        license=license_,
        language=f"Python {python}" if python else "Python",
    )


_FACTS: dict[str, Callable[[object], PackageFacts]] = {"npm": npm_facts, "pypi": pypi_facts}

# Markdown and HTML markup removed for the excerpt; the stored text keeps it.
_EXCERPT_DROP = (
    re.compile(r"<!--.*?-->", re.DOTALL),
    re.compile(r"<(script|style)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE),
    re.compile(r"```.*?```", re.DOTALL),
    re.compile(r"!\[[^\]]*\]\([^)]*\)"),
    re.compile(r"\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\)"),
    re.compile(r"<[^>\n]{0,500}>"),
)
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__|`)")


def readme_excerpt(text: str, limit: int = EXCERPT_CHARS) -> list[str]:
    """The README's opening as plain paragraphs (at most `limit` characters in all)."""
    for pattern in _EXCERPT_DROP:
        text = pattern.sub(" ", text)
    text = _EMPHASIS.sub("", _HEADING.sub("", _LINK.sub(r"\1", text)))
    paragraphs: list[str] = []
    used = 0
    for block in re.split(r"\n\s*\n", text):
        words = " ".join(block.split())
        if not words or not any(c.isalnum() for c in words):
            continue
        if used + len(words) > limit:
            room = limit - used
            if room > 80:
                paragraphs.append(words[:room].rsplit(" ", 1)[0] + " …")
            break
        paragraphs.append(words)
        used += len(words)
    return paragraphs


# --- what pages and get_server show ----------------------------------------------------------------


def third_party_out(rows: list[Row]) -> ThirdPartyText:
    readme: ReadmeOut | None = None
    packages: list[PackageInfoOut] = []
    for row in rows:
        if row["source"] == "readme":
            readme = ReadmeOut(
                source_url=row["source_url"],
                repository=row["identifier"],
                fetched_at=row["fetched_at"],
                checked_at=row["checked_at"],
                excerpt=readme_excerpt(row["body"]),
                truncated=row["truncated"],
            )
        else:
            packages.append(
                PackageInfoOut(
                    registry=row["source"],
                    identifier=row["identifier"],
                    source_url=row["source_url"],
                    fetched_at=row["fetched_at"],
                    description=row["body"] or None,
                    keywords=list(row["keywords"] or []),
                    license=row["license"],
                    language=row["language"],
                )
            )
    return ThirdPartyText(readme=readme, packages=packages)


# --- reading it --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    kind: str  # readme, npm, pypi
    identifier: str
    urls: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.kind} {self.identifier}"


class ThirdPartyReader:
    def __init__(
        self,
        repo: Repository,
        settings: Settings,
        resolver: dns.asyncresolver.Resolver,
        *,
        clock: Callable[[], datetime],
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.repo = repo
        self.settings = settings
        self.resolver = resolver
        self.clock = clock
        self.rng = rng
        self.policy = probe_policy(settings)
        self.interval = timedelta(hours=settings.third_party_interval_hours)
        self._scheduled_at: datetime | None = None

    def sources(self, row: Mapping[str, Any]) -> list[_Source]:
        """What a listing lets us read about it: its GitHub repository's README, its npm/PyPI packages."""
        found: list[_Source] = []
        repository = row.get("repository")
        url = repository.get("url") if isinstance(repository, dict) else None
        github = github_repository(url)
        if github is not None:
            owner, name = github
            canonical = f"https://github.com/{owner}/{name}"
            found.append(
                _Source("readme", canonical, tuple(readme_urls(self.settings.readme_base_url, *github)))
            )
        bases = {"npm": self.settings.npm_registry_url, "pypi": self.settings.pypi_url}
        builders = {"npm": npm_document_url, "pypi": pypi_document_url}
        seen: set[str] = set()
        for package in row.get("packages") or []:
            if not isinstance(package, dict):
                continue
            kind, identifier = package.get("registryType"), package.get("identifier")
            if kind not in builders or not isinstance(identifier, str) or f"{kind} {identifier}" in seen:
                continue
            doc_url = builders[kind](bases[kind], identifier)
            if doc_url is not None and len(seen) < PACKAGES_PER_SERVER:
                seen.add(f"{kind} {identifier}")
                found.append(_Source(kind, identifier, (doc_url,)))
        return found

    async def run_due(self, limit: int = BATCH) -> int:
        """Read the sources of servers that are due; returns how many servers were read."""
        now = self.clock()
        async with self.repo.read() as q:
            if (
                self._scheduled_at is None
                or now - self._scheduled_at >= SCHEDULE_EVERY
                or now < self._scheduled_at
            ):
                await q.schedule_third_party(now)
                self._scheduled_at = now
            rows = await q.claim_due_third_party(now, now + LEASE, limit)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(row: Row) -> None:
            async with gate:
                try:
                    await self._refresh_row(row)
                except Exception as exc:  # one server's surprise must not end the others' round
                    log.error("third-party text round failed", server=row["name"], error=type(exc).__name__)

        await asyncio.gather(*(one(row) for row in rows))
        return len(rows)

    async def refresh(self, name: str) -> RefreshSummary:
        """Read one listed server's sources now (`mcplookup third-party NAME`)."""
        async with self.repo.read() as q:
            row = await q.get_listed_for_third_party(name)
        if row is None:
            raise NotFound(f"no listed server is named {name}", field="name")
        return await self._refresh_row(row)

    async def _refresh_row(self, row: Row) -> RefreshSummary:
        summary = RefreshSummary(name=row["name"])
        try:
            async with self.repo.read() as q:
                stored = {f"{r['source']} {r['identifier']}": r for r in await q.third_party_of(row["id"])}
            sources = self.sources(row)
            changed = False
            for source in sources:
                changed |= await self._read(row["id"], source, stored.get(source.key), summary)
            async with self.repo.read() as q:
                # A source the listing no longer names (a removed package, another repository) goes.
                changed |= await q.forget_third_party(row["id"], [s.key for s in sources]) > 0
                if changed:
                    await q.reindex_server(row["id"])
                await q.finish_third_party(
                    row["id"], self.clock(), self._next_due(), "; ".join(summary.failed)[:2000] or None
                )
        except RegistryError as exc:
            summary.failed.append(exc.message)
            log.warning("third-party text not stored", server=row["name"], error=exc.message)
        if summary.failed:
            log.info("third-party text: some sources failed", server=row["name"], failed=summary.failed)
        return summary

    def _count(self, source: _Source, outcome: str) -> None:
        THIRD_PARTY_READS.labels(source=source.kind, outcome=outcome).inc()

    def _next_due(self) -> datetime:
        # Spread over a tenth of the interval, so servers imported together are not all due together.
        return self.clock() + self.interval * (0.9 + 0.2 * self.rng())

    async def _read(
        self, server_id: UUID, source: _Source, stored: Row | None, summary: RefreshSummary
    ) -> bool:
        """Fetch one source and store what it says; True when the indexed text changed."""
        max_bytes = self.settings.readme_max_bytes if source.kind == "readme" else MAX_PACKAGE_BYTES
        # One deadline per document, redirects included: the prober's (MCPLOOKUP_PROBE_TIMEOUT).
        limits = FetchLimits(
            max_bytes=max_bytes, timeout=self.settings.probe_timeout, ca_bundle=self.settings.probe_ca_bundle
        )
        accept = "text/markdown, text/plain;q=0.9" if source.kind == "readme" else "application/json"
        urls = list(source.urls)
        if stored is not None and stored["source_url"] in urls:
            # The name that answered last time first, with its ETag.
            urls.remove(stored["source_url"])
            urls.insert(0, stored["source_url"])
        for url in urls:
            etag = stored["etag"] if stored is not None and stored["source_url"] == url else None
            try:
                fetched = await fetch_document(
                    url, self.resolver, self.policy, limits, accept=accept, etag=etag
                )
            except FetchFailed as exc:
                summary.failed.append(exc.reason)
                self._count(source, "failed")
                return False
            if fetched.status == 404:
                continue
            if fetched.status == 304:
                async with self.repo.read() as q:
                    await q.confirm_third_party(server_id, source.kind, source.identifier, self.clock())
                summary.confirmed.append(source.key)
                self._count(source, "unchanged")
                return False
            try:
                params = self._parsed(source, fetched)
            except (NotMarkdown, ValueError) as exc:
                summary.failed.append(f"{url}: {exc}")
                self._count(source, "failed")
                return False
            async with self.repo.read() as q:
                changed = await q.upsert_third_party(
                    {
                        **params,
                        "server_id": server_id,
                        "source": source.kind,
                        "identifier": source.identifier,
                        "source_url": url,
                        "etag": _line(fetched.etag, 200),
                        "now": self.clock(),
                    }
                )
            summary.read.append(source.key)
            self._count(source, "read")
            return changed
        summary.absent.append(source.key)
        self._count(source, "absent")
        return False

    def _parsed(self, source: _Source, fetched: Fetched) -> dict[str, Any]:
        if source.kind == "readme":
            text, truncated = clean_markdown(fetched.body, fetched.content_type)
            return {"body": text, "truncated": truncated, "keywords": [], "license": None, "language": None}
        try:
            doc = json.loads(fetched.body)
        except (ValueError, UnicodeDecodeError):
            raise ValueError("the package registry's answer is not JSON") from None
        facts = _FACTS[source.kind](doc)
        return {
            "body": facts.description or "",
            "truncated": False,
            "keywords": facts.keywords,
            "license": facts.license,
            "language": facts.language,
        }
