"""Semantic evidence for discovery: a question's nearest servers by meaning, or why there are none.

With the `semantic` extra and MCPLOOKUP_EMBEDDING_MODEL, each question is embedded (cached, within
MCPLOOKUP_EMBEDDING_TIMEOUT) and its nearest stored server vectors found: by pgvector's HNSW index where
the database has it, else by numpy over every vector of the model, held in process (bounded by
IN_PROCESS_MAX_ROWS); a filtered search, the nearest among the servers its filters keep. DiscoveryService
passes them to the ranked query, which fuses them with the words' evidence (docs/discovery.md).
Anything missing or failing makes the answer lexical, saying why.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

import structlog

from mcplookup_mcp.core.errors import RegistryError
from mcplookup_mcp.core.models import SearchMode
from mcplookup_mcp.core.settings import Settings
from mcplookup_mcp.services.embedder import Embedder, load_embedder
from mcplookup_mcp.services.shared_read import quietly_retrieved
from mcplookup_mcp.store.repository import Repository, Row

if TYPE_CHECKING:
    from mcplookup_mcp.services.embedder import Matrix

log = structlog.get_logger("mcplookup.semantic")

# Nearest servers a question takes from the vectors: pgvector's HNSW search returns at most its
# ef_search (40 by default), and the in-process scoring keeps the same number, so both stores agree.
NEIGHBOURS = 40
# The most vectors a replica holds in process where the database has no pgvector: 20k x 384 floats is
# 30 MB. Beyond it the rest are not searched by meaning (logged); pgvector has no such bound.
IN_PROCESS_MAX_ROWS = 20_000
# The in-process vectors are read again at most this often, and only after a write moved the
# discovery generation (a stored embedding moves it).
RELOAD_SECONDS = 1.0
# Questions waiting for the model at once: past this the answer is lexical at once ("busy"), rather
# than a queue that outgrows every time bound.
MAX_WAITING = 16
# Tool names in a server's embedded text: most servers' tools are a dozen or fewer.
TEXT_TOOLS = 24

Mode = Literal["fused", "lexical"]
_NAME_PARTS = re.compile(r"[./_\-]+")
# Words every server says of itself ("A Model Context Protocol (MCP) server for ..."): in the vector they
# make every server alike. Taken out, "who owns a domain name" came 0.30 -> 0.40 near whois-mcp and
# "run shell commands" 0.24 -> 0.29 near terminal-controller-mcp.
_BOILERPLATE = re.compile(r"\(?\b(?:model context protocol|mcp)\b\)?|\bservers?\b", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
# Markdown that carries no meaning for the model: images, link targets, bare URLs, markup characters.
_MARKDOWN = re.compile(r"!\[[^\]]*\]\([^)]*\)|\]\([^)]*\)|https?://\S+|<[^>]*>|[#*_`>|\[\]]+")
# Of what others publish about a server, as much as the model still reads after the owner's own text.
THIRD_PARTY_CHARS = 600


@dataclass(frozen=True)
class Evidence:
    """The nearest servers (most similar first), and the most any other embedded server can be."""

    ids: list[UUID]
    similarities: list[float]
    bound: float
    model: str


def embedding_text(row: Mapping[str, Any]) -> str:
    """What a server's vector is made from: what it is called, what it says it does, what it offers."""
    name = str(row.get("name") or "")
    words = " ".join(p for p in _NAME_PARTS.split(name.rsplit("/", 1)[-1]) if p)
    title = str(row.get("title") or "").strip()
    parts = [f"{title} ({words})" if title and title.lower() != words.lower() else words]
    description = str(row.get("description") or "").strip()
    if description:
        parts.append(description)
    capabilities = [str(c) for c in row.get("capabilities") or ()]
    if row.get("category"):
        capabilities.append(str(row["category"]))
    if capabilities:
        parts.append("Capabilities: " + ", ".join(dict.fromkeys(capabilities)))
    tools = row.get("tools")
    names = [
        str(t["name"])
        for t in (tools if isinstance(tools, list) else [])
        if isinstance(t, dict) and isinstance(t.get("name"), str)
    ][:TEXT_TOOLS]
    if names:
        parts.append("Tools: " + ", ".join(names))
    # Third-party text (READMEs, package registries: services/third_party.py) comes last, so the owner's
    # words always reach the model and others' fill only what room is left.
    third_party = _SPACES.sub(" ", _MARKDOWN.sub(" ", str(row.get("third_party") or ""))).strip()
    if third_party:
        parts.append(third_party[:THIRD_PARTY_CHARS])
    return _SPACES.sub(" ", _BOILERPLATE.sub(" ", ". ".join(parts))).strip()


class SemanticSearch:
    def __init__(self, repo: Repository, settings: Settings, embedder: Embedder | None = None) -> None:
        self.repo = repo
        self.timeout = settings.embedding_timeout
        if embedder is not None:
            self.embedder: Embedder | None = embedder
            self.reason = "loaded"
        else:
            self.embedder, self.reason = load_embedder(settings.embedding_model)
        if self.embedder is None and settings.embedding_model:
            log.warning("semantic search is off: search is lexical", reason=self.reason)
        # Two threads: questions embed side by side with the event loop; more would only queue on 2 cores.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mcplookup-embed")
        self._waiting = 0
        self.vector_storage: bool | None = None  # known at the first search or embedding round
        self._matrix: Matrix | None = None
        self._matrix_ids: list[UUID] = []
        self._matrix_index: dict[UUID, int] = {}
        self._matrix_generation: int | None = None
        self._matrix_loaded = float("-inf")
        self._matrix_lock = asyncio.Lock()

    @property
    def mode(self) -> Mode:
        return "fused" if self.embedder is not None else "lexical"

    @property
    def model(self) -> str | None:
        return self.embedder.name if self.embedder is not None else None

    def describe(self) -> SearchMode:
        storage: Literal["pgvector", "in_process"] | None = (
            None if self.vector_storage is None else "pgvector" if self.vector_storage else "in_process"
        )
        return SearchMode(
            mode=self.mode,
            model=self.model,
            reason=None if self.embedder is not None else self.reason,
            vector_storage=storage if self.embedder is not None else None,
        )

    async def storage(self) -> bool:
        if self.vector_storage is None:
            async with self.repo.read() as q:
                has_vector = await q.embedding_storage()
            # pgvector's column holds 384 dimensions (migration 0013); another model is scored in process.
            self.vector_storage = has_vector and self.embedder is not None and self.embedder.dimensions == 384
        return self.vector_storage

    async def evidence(
        self,
        query: str,
        generation: Callable[[], Awaitable[int]],
        filters: Mapping[str, Any] | None = None,
    ) -> tuple[Evidence | None, str | None]:
        """The question's nearest servers (among those `filters` keep, discovery.sql's _listed_filters,
        when given), or None and why the answer is lexical."""
        embedder = self.embedder
        if embedder is None:
            return None, self.reason
        if self._waiting >= MAX_WAITING:
            return None, "the embedding model is busy: too many questions wait for it"
        self._waiting += 1
        try:
            running = asyncio.get_running_loop().run_in_executor(self._pool, embedder.embed_query, query)
            # Past the time bound it finishes anyway and fills the cache; its error, if any, is dropped.
            running.add_done_callback(quietly_retrieved)
            vector = await asyncio.wait_for(asyncio.shield(running), self.timeout)
        except TimeoutError:
            return None, f"the embedding model did not answer within {self.timeout * 1000:g} ms"
        except Exception as exc:  # a failing model must leave search working
            log.warning("query embedding failed", error=type(exc).__name__)
            return None, "the embedding model failed on this question"
        finally:
            self._waiting -= 1
        embedded = True
        if await self.storage():
            listed = [float(x) for x in vector]
            async with self.repo.read() as q:
                if filters is None:
                    rows = await q.nearest_embeddings(embedder.name, listed, NEIGHBOURS)
                else:
                    rows = await q.nearest_embeddings_within(embedder.name, listed, NEIGHBOURS, filters)
                    # None kept, yet others embedded: the meaning was weighed and found nothing.
                    embedded = bool(rows) or bool(await q.nearest_embeddings(embedder.name, listed, 1))
            ids = [row["id"] for row in rows]
            sims = [float(row["similarity"]) for row in rows]
        else:
            ids, sims = await self._nearest_in_process(vector, embedder.name, generation, filters)
            embedded = self._matrix is not None
        if not ids and filters is not None and embedded:
            return Evidence([], [], -1.0, embedder.name), None
        if not ids:
            # Nothing to fuse: calling the answer fused would claim a meaning it never weighed.
            return (
                None,
                "no server has a vector of this model yet (a running server's embedding worker writes them)",
            )
        bound = sims[-1] if len(sims) >= NEIGHBOURS else -1.0
        return Evidence(ids, sims, bound, embedder.name), None

    async def _nearest_in_process(
        self,
        vector: Matrix,
        model: str,
        generation: Callable[[], Awaitable[int]],
        filters: Mapping[str, Any] | None = None,
    ) -> tuple[list[UUID], list[float]]:
        import numpy as np

        await self._reload(model, generation)
        matrix, ids = self._matrix, self._matrix_ids
        if matrix is None or not ids:
            return [], []
        if filters is not None:
            # Only the rows the filters keep are scored: the nearest overall may hold none of them.
            async with self.repo.read() as q:
                kept = await q.listed_within_filters(filters, IN_PROCESS_MAX_ROWS + 1)
            index = self._matrix_index
            rows = [index[i] for i in kept if i in index]
            if not rows:
                return [], []
            matrix = matrix[np.asarray(rows)]
            ids = [ids[i] for i in rows]
        scores = matrix @ vector
        k = min(NEIGHBOURS, len(ids))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [ids[i] for i in top], [float(scores[i]) for i in top]

    async def _reload(self, model: str, generation: Callable[[], Awaitable[int]]) -> None:
        if time.monotonic() - self._matrix_loaded < RELOAD_SECONDS:
            return
        async with self._matrix_lock:
            if time.monotonic() - self._matrix_loaded < RELOAD_SECONDS:
                return
            current = await generation()
            if current == self._matrix_generation and self._matrix is not None:
                self._matrix_loaded = time.monotonic()
                return
            import numpy as np

            async with self.repo.read() as q:
                rows = await q.model_embeddings(model, IN_PROCESS_MAX_ROWS + 1)
            if len(rows) > IN_PROCESS_MAX_ROWS:
                log.warning(
                    "more vectors than a replica holds in process: install pgvector",
                    held=IN_PROCESS_MAX_ROWS,
                )
                rows = rows[:IN_PROCESS_MAX_ROWS]
            self._matrix_ids = [row["id"] for row in rows]
            self._matrix_index = {server_id: i for i, server_id in enumerate(self._matrix_ids)}
            self._matrix = np.asarray([row["embedding"] for row in rows], dtype=np.float32) if rows else None
            self._matrix_generation = current
            self._matrix_loaded = time.monotonic()

    async def progress(self) -> Row | None:
        """Servers embedded with the current model and servers waiting, or None when search is lexical."""
        if self.embedder is None:
            return None
        try:
            async with self.repo.read() as q:
                return await q.embedding_progress(self.embedder.name)
        except RegistryError:
            return None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
