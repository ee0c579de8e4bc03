"""`mcplookup`: serve, migrate, import, discover."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from mcplookup_mcp.settings import MAX_WORKERS, ConfigError, Settings, load_settings


def _database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    from mcplookup_mcp.embedded import start_embedded

    print(f"DATABASE_URL is unset: using the embedded PostgreSQL in {settings.data_dir}", file=sys.stderr)
    return start_embedded(settings.data_dir)


def _worker_count(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of processes from 1 to {MAX_WORKERS}")
    return int(raw)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from mcplookup_mcp.logs import configure_logging
    from mcplookup_mcp.migrate import apply_migrations

    configure_logging(settings.log_level, json_lines=settings.is_production)
    url = _database_url(settings)
    applied = asyncio.run(apply_migrations(url))
    if applied:
        print(f"applied migrations: {', '.join(applied)}", file=sys.stderr)
    from mcplookup_mcp.http_protocol import uvicorn_options

    workers = args.workers or settings.workers
    listen: dict[str, Any] = {
        **uvicorn_options(),
        "host": args.host or settings.host,
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
    from mcplookup_mcp.metrics import MULTIPROCESS_DIR

    own_dir = not os.environ.get(MULTIPROCESS_DIR)
    metrics_dir = tempfile.mkdtemp(prefix="mcplookup-metrics-") if own_dir else os.environ[MULTIPROCESS_DIR]
    os.environ |= {"DATABASE_URL": url, MULTIPROCESS_DIR: metrics_dir}
    try:
        uvicorn.run("mcplookup_mcp.app:app_from_environment", factory=True, workers=workers, **listen)
    finally:
        if own_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from mcplookup_mcp.migrate import apply_migrations

    applied = asyncio.run(apply_migrations(_database_url(settings)))
    print(f"applied: {', '.join(applied)}" if applied else "the database is up to date")
    return 0


def _discover(settings: Settings, args: argparse.Namespace) -> int:
    from mcplookup_mcp.app import create_app

    async def run() -> int:
        app = create_app(settings, _database_url(settings), background=False)
        service = app.state.service
        await service.repo.open()
        try:
            result = await service.discover(
                {"query": " ".join(args.query), "limit": args.limit}, transport="cli"
            )
            await service.discovery.flush_events()
        finally:
            await service.repo.close()
        print(json.dumps(result.model_dump(mode="json"), indent=2))
        return 0

    return asyncio.run(run())


def _import(settings: Settings, args: argparse.Namespace) -> int:
    from mcplookup_mcp.errors import InvalidInput
    from mcplookup_mcp.importer import Importer, entries_of
    from mcplookup_mcp.migrate import apply_migrations
    from mcplookup_mcp.repository import Repository, make_pool
    from mcplookup_mcp.service import utcnow

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

    async def run() -> int:
        url = _database_url(settings)
        await apply_migrations(url)
        pool = make_pool(url, 2)
        await pool.open(wait=True)
        try:
            summary = await Importer(Repository(pool), utcnow).run(entries, progress if show else None)
        finally:
            await pool.close()
        if show:
            print(file=sys.stderr)
        print(
            f"created {summary.created}, updated {summary.updated}, unchanged {summary.unchanged}, "
            f"skipped {len(summary.skipped)}"
        )
        for skipped in summary.skipped:
            print(f"  skipped entry {skipped.index} ({skipped.name or 'no name'}): {skipped.reason}")
        return 0

    return asyncio.run(run())


def _dev_dns(settings: Settings, args: argparse.Namespace) -> int:
    from mcplookup_mcp.devdns import LoopbackDnsServer

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mcplookup", description="MCPLookup: the MCP server registry")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server (MCP at /mcp, REST at /api/v1)")
    serve.add_argument("--host", help="listen address (default MCPLOOKUP_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default PORT or 8000)")
    serve.add_argument(
        "--workers",
        type=_worker_count,
        help="server processes sharing the port (default MCPLOOKUP_WORKERS or 1)",
    )
    serve.set_defaults(handler=_serve)
    migrate = sub.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(handler=_migrate)
    discover = sub.add_parser("discover", help="search the registry from the command line")
    discover.add_argument("query", nargs="+")
    discover.add_argument("--limit", type=int, default=10)
    discover.set_defaults(handler=_discover)
    importer = sub.add_parser("import", help="load server.json entries (a JSON list or one object)")
    importer.add_argument("file", help="path to the JSON file")
    importer.set_defaults(handler=_import)
    dev_dns = sub.add_parser(
        "dev-dns", help="a loopback DNS server serving given TXT records (development and tests only)"
    )
    dev_dns.add_argument("--host", default="127.0.0.1")
    dev_dns.add_argument("--port", type=int, default=5353)
    dev_dns.add_argument(
        "--txt", action="append", default=[], metavar="NAME=VALUE", help="a TXT record to serve"
    )
    dev_dns.set_defaults(handler=_dev_dns)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"mcplookup: configuration error: {exc}", file=sys.stderr)
        return 2
    return int(args.handler(settings, args))


if __name__ == "__main__":
    raise SystemExit(main())
