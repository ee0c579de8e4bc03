"""`mcplookup`: serve, migrate, import, sync, third-party, embed, discover, dev-dns."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from mcplookup_mcp.core.settings import MAX_WORKERS, ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from mcplookup_mcp.core.models import DiscoverResult
    from mcplookup_mcp.store.repository import Repository


@dataclass(frozen=True)
class Database:
    """The database a command uses, and how to name it to the person who ran the command."""

    url: str
    described: str


def _database(settings: Settings, *, serving: bool = False) -> Database:
    """DATABASE_URL when set; else the embedded PostgreSQL of the data directory, started or joined."""
    if settings.database_url:
        return Database(settings.database_url, describe_url(settings.database_url))
    from mcplookup_mcp.store.embedded import embedded_running, start_embedded

    pgdata = settings.data_dir / "pgdata"
    # Every mcplookup process on one data directory shares one embedded server (see embedded.py), so
    # whether it was already running tells whether a `serve` on this directory sees the same data.
    shared = embedded_running(pgdata)
    url = start_embedded(settings.data_dir)
    if shared:
        how = "already running: shared with the other mcplookup processes on this data directory"
        how += "" if serving else ", a running serve included, which sees the same data"
    elif serving:
        how = "started by this server; other mcplookup commands on this data directory share it"
    else:
        how = (
            "started for this command and stopped after it: no mcplookup serve is using this data "
            "directory now; one started on it later sees the same data"
        )
    return Database(url, f"the embedded PostgreSQL in {pgdata} ({how})")


def describe_url(url: str) -> str:
    """Host, port, database and user of a connection string; never its password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the PostgreSQL of DATABASE_URL (unreadable connection string)"
    host = str(parts.get("host") or "")
    port = str(parts.get("port") or "5432")
    # A host starting with "/" is a socket directory: no port to show.
    where = (host or "the local socket") if not host or host.startswith("/") else f"{host}:{port}"
    user = f" as {parts['user']}" if parts.get("user") else ""
    return f"PostgreSQL at {where}, database {parts.get('dbname') or parts.get('user') or 'postgres'}{user} (DATABASE_URL)"


def _with_data_dir(settings: Settings, args: argparse.Namespace) -> Settings:
    given: Path | None = getattr(args, "data_dir", None)
    if given is None:
        return settings
    if settings.database_url:
        raise ConfigError(
            "--data-dir names the embedded PostgreSQL's directory, but DATABASE_URL is set and is used "
            "instead; unset DATABASE_URL or leave out --data-dir"
        )
    return replace(settings, data_dir=given.expanduser())


def _worker_count(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of processes from 1 to {MAX_WORKERS}")
    return int(raw)


def _say(text: str) -> None:
    print(f"mcplookup: {text}", file=sys.stderr)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from mcplookup_mcp.core.logs import configure_logging
    from mcplookup_mcp.store.migrate import apply_migrations
    from mcplookup_mcp.transports.metrics_port import MetricsPortInUse, check_free, hold_for_workers

    configure_logging(settings.log_level, json_lines=settings.is_production)
    workers = args.workers or settings.workers
    # The metrics listener (METRICS_PORT) binds the address the app binds, --host included.
    settings = replace(settings, host=args.host or settings.host)
    guard = None
    if settings.metrics_enabled and settings.metrics_port is not None:
        # Before anything starts: a port another server holds is a start error, not hidden figures.
        try:
            if workers == 1:
                check_free(settings.host, settings.metrics_port)
            else:
                guard = hold_for_workers(settings.host, settings.metrics_port)
        except MetricsPortInUse as exc:
            _say(str(exc))
            return 2
    database = _database(settings, serving=True)
    _say(f"serving with {database.described}")
    url = database.url
    applied = asyncio.run(apply_migrations(url))
    if applied:
        print(f"applied migrations: {', '.join(applied)}", file=sys.stderr)
    from mcplookup_mcp.transports.http_protocol import uvicorn_options

    listen: dict[str, Any] = {
        **uvicorn_options(),
        "host": settings.host,
        "port": args.port or settings.port,
        "log_level": settings.log_level.lower(),
        "access_log": False,
        # The app reads X-Forwarded-For itself (client_address.py): uvicorn's reading takes the leftmost
        # entry, which the client writes, whenever it is told to trust every peer.
        "proxy_headers": False,
    }
    if workers == 1:
        from mcplookup_mcp.app import create_app

        uvicorn.run(create_app(settings, url), **listen)
        return 0
    # Several processes on one socket, each with its own pools and answer cache, like replicas behind a
    # load balancer. They build their apps from the environment: the database URL (the embedded one
    # included) and a private directory where their Prometheus figures are pooled.
    from mcplookup_mcp.core.metrics import MULTIPROCESS_DIR

    own_dir = not os.environ.get(MULTIPROCESS_DIR)
    metrics_dir = tempfile.mkdtemp(prefix="mcplookup-metrics-") if own_dir else os.environ[MULTIPROCESS_DIR]
    os.environ |= {"DATABASE_URL": url, MULTIPROCESS_DIR: metrics_dir, "MCPLOOKUP_HOST": listen["host"]}
    try:
        uvicorn.run("mcplookup_mcp.app:app_from_environment", factory=True, workers=workers, **listen)
    finally:
        if guard is not None:
            guard.close()
        if own_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from mcplookup_mcp.store.migrate import apply_migrations

    database = _database(settings)
    _say(f"migrating {database.described}")
    applied = asyncio.run(apply_migrations(database.url))
    print(f"applied: {', '.join(applied)}" if applied else "the database is up to date")
    return 0


def _discover(settings: Settings, args: argparse.Namespace) -> int:
    from mcplookup_mcp.app import create_app
    from mcplookup_mcp.core.errors import RegistryError
    from mcplookup_mcp.store.migrate import apply_migrations

    database = _database(settings)
    _say(f"searching {database.described}")

    async def run() -> int:
        # A fresh data directory has no tables yet: the search then finds nothing instead of failing.
        await apply_migrations(database.url)
        app = create_app(settings, database.url, background=False)
        service = app.state.service
        await service.repo.open()
        try:
            result = await service.discover(
                {"query": " ".join(args.query), "limit": args.limit}, transport="cli"
            )
            await service.discovery.flush_events()
        except RegistryError as exc:
            _say(exc.message)
            return 2
        finally:
            await service.repo.close()
        if args.json:
            print(json.dumps(result.model_dump(mode="json"), indent=2))
        elif result.servers:
            # Cut to the terminal's width on a terminal; whole lines into a pipe or a file.
            width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
            print(discover_table(result, width))
        else:
            print(
                "no server matched. If the registry is empty, load entries with: mcplookup import FILE "
                "(for instance tests/data/registry-seed-2025-05-16.json from a checkout)"
            )
        return 0

    return asyncio.run(run())


@asynccontextmanager
async def _repository(url: str) -> AsyncIterator[Repository]:
    """The one-shot commands' repository: the database migrated, a small pool of their own, closed on the
    way out."""
    from mcplookup_mcp.store.migrate import apply_migrations
    from mcplookup_mcp.store.repository import Repository, make_pool

    await apply_migrations(url)
    pool = make_pool(url, 2)
    await pool.open(wait=True)
    try:
        yield Repository(pool)
    finally:
        await pool.close()


def _embed(settings: Settings, args: argparse.Namespace) -> int:
    from mcplookup_mcp.services.embedding_worker import EmbeddingWorker
    from mcplookup_mcp.services.semantic import SemanticSearch

    database = _database(settings)

    async def run() -> int:
        async with _repository(database.url) as repo:
            semantic = SemanticSearch(repo, settings)
            if semantic.embedder is None:
                _say(f"search is lexical, nothing to embed: {semantic.reason}")
                return 2
            _say(f"embedding servers in {database.described} with {semantic.model}")
            stored = await EmbeddingWorker(semantic).run_until_done()
            semantic.close()
        print(f"embedded {stored} servers")
        return 0

    return asyncio.run(run())


DISCOVER_COLUMNS = ("name", "verified", "health", "why it matched")


def why_matched(matched: dict[str, list[str]]) -> str:
    """match.matched_words as one line: each stored field with the query's words found in it, as typed."""
    return "; ".join(f"{field}: {', '.join(terms)}" for field, terms in matched.items() if terms) or "-"


def discover_table(result: DiscoverResult, width: int | None = None) -> str:
    """The ranked servers as a plain-text table, the last column cut to fit `width` characters if given."""
    rows = [
        (
            s.name,
            "yes" if s.verified else "no",
            s.health.status,
            f"{s.match.strength}: {why_matched(s.match.matched_words)}"
            if s.match.strength
            else why_matched(s.match.matched_words),
        )
        for s in result.servers
    ]
    widths = [max(len(row[i]) for row in [DISCOVER_COLUMNS, *rows]) for i in range(3)]
    room = max(width - sum(widths) - 2 * 3, 20) if width else None

    def line(row: Sequence[str]) -> str:
        why = row[3] if room is None or len(row[3]) <= room else row[3][: room - 3] + "..."
        return "  ".join([*(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)), why]).rstrip()

    more = f"\n(more: --limit above {len(rows)}, or --json for next_cursor)" if result.next_cursor else ""
    unsure = "\n(no confident match: these are guesses, marked weak)" if result.no_confident_match else ""
    return "\n".join([line(DISCOVER_COLUMNS), *(line(row) for row in rows)]) + more + unsure


def _import(settings: Settings, args: argparse.Namespace) -> int:
    from mcplookup_mcp.core.errors import InvalidInput
    from mcplookup_mcp.services.importer import Importer, entries_of
    from mcplookup_mcp.services.service import utcnow

    try:
        with open(args.file, encoding="utf-8") as handle:
            entries = entries_of(json.load(handle))
    except (OSError, ValueError, InvalidInput) as exc:
        print(f"mcplookup: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    show = sys.stderr.isatty()

    def progress(done: int) -> None:
        width = 40
        filled = width * done // max(len(entries), 1)
        print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{len(entries)}", end="", file=sys.stderr)

    database = _database(settings)
    _say(f"importing {len(entries)} entries into {database.described}")

    async def run() -> int:
        async with _repository(database.url) as repo:
            summary = await Importer(repo, utcnow).run(entries, progress if show else None)
        if show:
            print(file=sys.stderr)
        print(
            f"created {summary.created}, updated {summary.updated}, unchanged {summary.unchanged}, "
            f"skipped {len(summary.skipped)}, fixed {len(summary.fixed)}"
        )
        for skipped in summary.skipped:
            print(f"  skipped entry {skipped.index} ({skipped.entry}): {skipped.reason}")
        if summary.fixed:
            print(f"fixed for /v0.1 (the stored entry keeps its text): {len(summary.fixed)}")
        for fixed in summary.fixed:
            print(f"  fixed entry {fixed.index} ({fixed.name or 'no name'}): {', '.join(fixed.fixes)}")
        return 0

    return asyncio.run(run())


def _third_party(settings: Settings, args: argparse.Namespace) -> int:
    from mcplookup_mcp.core.errors import RegistryError
    from mcplookup_mcp.probe.dns_resolver import make_resolver
    from mcplookup_mcp.services.service import utcnow
    from mcplookup_mcp.services.third_party import ThirdPartyReader

    database = _database(settings)
    _say(f"reading READMEs and package entries for {database.described}")

    async def run() -> int:
        resolver = make_resolver(list(settings.dns_nameservers), settings.dns_timeout)
        failed = 0
        async with _repository(database.url) as repo:
            reader = ThirdPartyReader(repo, settings, resolver, clock=utcnow)
            for name in args.names:
                try:
                    summary = await reader.refresh(name)
                except RegistryError as exc:
                    print(f"{name}: {exc.message}")
                    failed += 1
                    continue
                parts = [
                    f"{label} {', '.join(keys)}"
                    for label, keys in (
                        ("read", summary.read),
                        ("unchanged", summary.confirmed),
                        ("none at", summary.absent),
                    )
                    if keys
                ]
                print(f"{name}: {'; '.join(parts) or 'no README or npm/PyPI package to read'}")
                for problem in summary.failed:
                    print(f"  failed: {problem}")
                failed += bool(summary.failed)
        return 1 if failed else 0

    return asyncio.run(run())


def _sync(settings: Settings, args: argparse.Namespace) -> int:
    from mcplookup_mcp.probe.dns_resolver import make_resolver
    from mcplookup_mcp.services.service import utcnow
    from mcplookup_mcp.services.upstream_sync import build_sync

    if not settings.upstream_registries:
        print(
            "mcplookup: no upstream registry to follow: MCPLOOKUP_UPSTREAM_REGISTRIES is empty",
            file=sys.stderr,
        )
        return 2
    if args.max_seconds is not None:
        settings = replace(settings, sync_max_seconds=args.max_seconds)
    database = _database(settings)
    _say(f"following {', '.join(settings.upstream_registries)} into {database.described}")

    async def run() -> int:
        resolver = make_resolver(list(settings.dns_nameservers), settings.dns_timeout)
        async with _repository(database.url) as repo:
            sync = build_sync(repo, settings, resolver, utcnow)
            try:
                reports = await sync.run()
            finally:
                await sync.client.aclose()
        failed = False
        for report in reports:
            state = "finished" if report.finished else ("stopped" if report.error else "paused (time budget)")
            watermark = report.watermark.isoformat() if report.watermark else "none"
            print(
                f"{report.upstream}: {state}; pages {report.pages}, created {report.created}, "
                f"updated {report.updated}, unchanged {report.unchanged}, refused {len(report.refused)}, "
                f"fixed {len(report.fixed)}; watermark {watermark}"
            )
            if report.error:
                failed = True
                print(f"  error: {report.error}")
            for name, reason in report.refused:
                print(f"  refused {name or '(no name)'}: {reason}")
            for name, fixes in report.fixed:
                print(f"  fixed for /v0.1 {name}: {', '.join(fixes)}")
        return 1 if failed else 0

    return asyncio.run(run())


def _dev_dns(settings: Settings, args: argparse.Namespace) -> int:
    from mcplookup_mcp.probe.devdns import LoopbackDnsServer

    async def run() -> int:
        server = LoopbackDnsServer(args.host, args.port)
        for entry in args.txt:
            name, sep, value = entry.partition("=")
            if not sep or not name or not value:
                print(f"mcplookup: --txt {entry!r} must look like NAME=VALUE", file=sys.stderr)
                return 2
            server.set_txt(name, value)
        await server.start()
        print(
            f"dev-dns answering on {server.host}:{server.port} (UDP and TCP); Ctrl-C stops it",
            file=sys.stderr,
        )
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()
        return 0

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's literal default; options whose default comes from the environment say so in
    their help instead (argparse would print "None" for them)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if action.default is None or "(default" in help_text:
            return help_text
        return super()._get_help_string(action)


def _command(sub: Any, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=summary, description=description, formatter_class=_HelpFormatter
    )
    return parser


def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="the embedded PostgreSQL's data directory, used when DATABASE_URL is unset; every command "
        "given the same directory shares one database "
        "(default: MCPLOOKUP_DATA_DIR, else ~/.local/share/mcplookup)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcplookup",
        description="MCPLookup: the MCP server registry. The database is DATABASE_URL when set, else an "
        "embedded PostgreSQL in the data directory.",
        formatter_class=_HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = _command(
        sub,
        "serve",
        "run the HTTP server (MCP at /mcp, REST at /api/v1)",
        "Run the HTTP server: MCP at /mcp, REST at /api/v1, web pages at /. Applies pending migrations "
        "first.",
    )
    serve.add_argument("--host", help="listen address (default: MCPLOOKUP_HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default: PORT, else 8000)")
    serve.add_argument(
        "--workers",
        type=_worker_count,
        help="server processes sharing the port (default: MCPLOOKUP_WORKERS, else 1)",
    )
    _data_dir_option(serve)
    serve.set_defaults(handler=_serve)
    migrate = _command(
        sub,
        "migrate",
        "apply pending database migrations",
        "Apply pending database migrations under an advisory lock (serve does it too).",
    )
    _data_dir_option(migrate)
    migrate.set_defaults(handler=_migrate)
    discover = _command(
        sub,
        "discover",
        "search the registry from the command line",
        "Search the registry as discover_servers does and print the ranked servers as a table (name, "
        "verified, health, why it matched), or as JSON with --json.",
    )
    discover.add_argument("query", nargs="+", help="what you need, in plain words or keywords")
    discover.add_argument("--limit", type=int, default=10, help="how many servers, 1 to 100")
    discover.add_argument(
        "--json", action="store_true", help="print the whole answer as JSON instead of a table"
    )
    _data_dir_option(discover)
    discover.set_defaults(handler=_discover)
    embed = _command(
        sub,
        "embed",
        "compute the semantic-search vectors of new and changed servers now",
        "Embed every server that has no current vector of the MCPLOOKUP_EMBEDDING_MODEL model (new, "
        "changed, or embedded by another model), as a running server's background worker does.",
    )
    _data_dir_option(embed)
    embed.set_defaults(handler=_embed)
    importer = _command(
        sub,
        "import",
        "load server.json entries (a JSON list or one object)",
        "Load server.json entries (a JSON list or one object) into the database a plain `mcplookup serve` "
        "uses, or the one --data-dir or DATABASE_URL names. Idempotent: prints created, updated, "
        "unchanged and skipped entries with reasons.",
    )
    importer.add_argument("file", help="path to the JSON file")
    _data_dir_option(importer)
    importer.set_defaults(handler=_import)
    third_party = _command(
        sub,
        "third-party",
        "read listed servers' READMEs and npm/PyPI entries now",
        "Read the README of each named server's GitHub repository (from MCPLOOKUP_README_BASE_URL) and the "
        "npm and PyPI entries of its packages now, through the prober's SSRF guard, and store them as "
        "third-party text; the scheduler's leader does the same for every server on its own schedule. "
        "Exits 1 when any source failed (what was stored before is kept).",
    )
    third_party.add_argument("names", nargs="+", metavar="NAME", help="a listed server's registry name")
    _data_dir_option(third_party)
    third_party.set_defaults(handler=_third_party)
    sync = _command(
        sub,
        "sync",
        "follow the upstream registries once (MCPLOOKUP_UPSTREAM_REGISTRIES)",
        "Read what changed in each upstream registry (MCPLOOKUP_UPSTREAM_REGISTRIES) since the last run, "
        "page by page, and apply it: new versions, status changes, deletions. Resumes where the last run "
        "stopped. Prints per upstream what was applied, refused (with the reason) and fixed for /v0.1; "
        "exits 1 when an upstream could not be read.",
    )
    sync.add_argument(
        "--max-seconds",
        type=float,
        help="time budget per upstream for this run (default: MCPLOOKUP_SYNC_MAX_SECONDS, else 120)",
    )
    _data_dir_option(sync)
    sync.set_defaults(handler=_sync)
    dev_dns = _command(
        sub,
        "dev-dns",
        "a loopback DNS server serving given TXT records (development and tests only)",
        "A loopback DNS server answering the given TXT records, for playing the domain owner on your own "
        "machine (point MCPLOOKUP_DNS_NAMESERVERS at it). Development and tests only.",
    )
    dev_dns.add_argument("--host", default="127.0.0.1", help="listen address")
    dev_dns.add_argument("--port", type=int, default=5353, help="listen port (UDP and TCP)")
    dev_dns.add_argument(
        "--txt",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a TXT record to serve; repeat for more (default: none)",
    )
    dev_dns.set_defaults(handler=_dev_dns)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _with_data_dir(load_settings(), args)
    except ConfigError as exc:
        print(f"mcplookup: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.handler(settings, args))
    except psycopg.OperationalError as exc:
        # psycopg's message names the host, port and database it tried; never the password.
        print(f"mcplookup: the database did not answer: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
