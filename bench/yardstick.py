"""The lean yardstick bench/discover.py measures discovery against: the least a ranked search service is.

A plain Starlette app on the same server stack (uvicorn, httptools, uvloop) and the same rows, answering
GET /search?q=... with one ranked full-text statement: `ts_rank` over a GIN-indexed weighted vector of
name (A) and description (B), every word of the question matching (`plainto_tsquery`, what a plain app
writes), ten best rows as JSON. Matching any word instead ranked tens of thousands of rows at 100k,
under 20 answers a second: no yardstick for anything. No cache,
no middleware, no filters, no validation beyond a length cap: what the product adds over this is what
its ratios measure.

    DATABASE_URL=postgresql:///mcpl_bench_1000?host=127.0.0.1&user=postgres PORT=8100 python bench/yardstick.py
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import uvicorn
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcplookup_mcp.transports.http_protocol import uvicorn_options

DOCUMENT = (
    "setweight(to_tsvector('english', name), 'A') || "
    "setweight(to_tsvector('english', coalesce(description, '')), 'B')"
)
INDEX = f"CREATE INDEX IF NOT EXISTS yardstick_document ON mcp_servers USING gin (({DOCUMENT}))"
SEARCH = f"""
SELECT name, description, endpoint, ts_rank({DOCUMENT}, asked.q) AS rank
  FROM mcp_servers, plainto_tsquery('english', %s) AS asked (q)
 WHERE status = 'active' AND {DOCUMENT} @@ asked.q
 ORDER BY rank DESC, name
 LIMIT 10
"""


def prepare(url: str) -> None:
    """The yardstick's index on the bench database (kept: building it at 100k rows takes seconds)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(INDEX)
        conn.execute("ANALYZE mcp_servers")


def make_app(url: str, pool_size: int = 8) -> Starlette:
    pool: AsyncConnectionPool[psycopg.AsyncConnection[dict[str, object]]] = AsyncConnectionPool(
        url,
        min_size=pool_size,
        max_size=pool_size,
        kwargs={"autocommit": True, "row_factory": dict_row, "prepare_threshold": 0},
        open=False,
    )

    async def search(request: Request) -> Response:
        q = request.query_params.get("q", "")[:500]
        async with pool.connection() as conn:
            rows = await (await conn.execute(SEARCH, (q,))).fetchall()
        return JSONResponse({"results": rows, "count": len(rows)})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await pool.open(wait=True)
        yield
        await pool.close()

    return Starlette(routes=[Route("/search", search), Route("/ready", search)], lifespan=lifespan)


def main() -> None:
    url = os.environ["DATABASE_URL"]
    prepare(url)
    uvicorn.run(
        make_app(url),
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "8100")),
        log_level="warning",
        access_log=False,
        **uvicorn_options(),
    )


if __name__ == "__main__":
    main()
