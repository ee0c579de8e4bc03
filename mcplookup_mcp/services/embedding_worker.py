"""The background loop that embeds servers: new, changed, or embedded by another model.

Runs on every replica that has the model. Each round claims a batch in a transaction with
`FOR NO KEY UPDATE SKIP LOCKED`, so replicas share the work and never embed the same server at once;
the vectors are computed in a thread and written before the transaction ends. Register, update,
import and the prober's new tools all reach it through the rows they write (migration 0013 marks a
changed server's vector stale), so no request waits for the model.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from mcplookup_mcp.core.errors import RegistryError
from mcplookup_mcp.services.semantic import SemanticSearch, embedding_text

log = structlog.get_logger("mcplookup.embeddings")

BATCH = 32
IDLE_SECONDS = 5.0


class EmbeddingWorker:
    def __init__(self, semantic: SemanticSearch, *, idle_seconds: float = IDLE_SECONDS) -> None:
        self.semantic = semantic
        self.idle_seconds = idle_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, batch: int = BATCH) -> int:
        """Embed one batch of waiting servers; returns how many were stored."""
        embedder = self.semantic.embedder
        if embedder is None:
            return 0
        in_vector_column = await self.semantic.storage()
        async with self.semantic.repo.transaction() as q:
            rows = await q.claim_unembedded(embedder.name, batch)
            if not rows:
                return 0
            vectors = await asyncio.to_thread(embedder.embed, [embedding_text(row) for row in rows])
            literals = ["{" + ",".join(f"{x:.7g}" for x in vector) + "}" for vector in vectors]
            return await q.store_embeddings(
                embedder.name, [row["id"] for row in rows], literals, in_vector_column=in_vector_column
            )

    async def run_until_done(self) -> int:
        """Embed every waiting server now (the tests, `mcplookup embed`)."""
        total = 0
        while stored := await self.run_once():
            total += stored
        return total

    async def run(self) -> None:
        while not self._stopping.is_set():
            stored = 0
            try:
                stored = await self.run_once()
                if stored:
                    log.info("servers embedded", servers=stored)
            except RegistryError as exc:
                log.warning("embedding round failed", error=exc.message)
            except Exception as exc:  # the loop must outlive any one bad round
                log.error("embedding round failed", error=type(exc).__name__)
            # A full batch: more are likely waiting, so go on at once.
            if stored < BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.idle_seconds)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="mcplookup-embeddings")

    async def stop(self, grace: float = 5.0) -> None:
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
