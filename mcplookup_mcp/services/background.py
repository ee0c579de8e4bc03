"""The loops every replica runs beside its requests: claim expiry, domain re-verification, and any job
repeated at an interval (gauges, standby checks). The scheduler's leader-only loops live in scheduler.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from mcplookup_mcp.core.errors import RegistryError
from mcplookup_mcp.core.metrics import REVERIFICATIONS
from mcplookup_mcp.services.ownership import RECHECK_BATCH, OwnershipService
from mcplookup_mcp.services.service import RegistryService

log = structlog.get_logger("mcplookup")
CLAIM_SWEEP_SECONDS = 300.0
REVERIFY_SWEEP_SECONDS = 300.0


async def every(seconds: float, job: Callable[[], Awaitable[None]]) -> None:
    while True:
        try:
            await job()
        except Exception as exc:  # the loop must outlive any one failed round
            log.warning("periodic job failed", job=job.__name__, error=type(exc).__name__)
        await asyncio.sleep(seconds)


async def sweep_claims(service: RegistryService) -> None:
    """Expire and purge stale claims. Idempotent, so every replica may run it."""
    while True:
        try:
            expired = await service.expire_claims()
            if expired:
                log.info("claims expired", count=expired)
        except RegistryError as exc:
            log.warning("claim sweep failed", error=exc.message)
        await asyncio.sleep(CLAIM_SWEEP_SECONDS)


async def reverify_domains(owner: OwnershipService) -> None:
    """Re-check the records of verified domains as they fall due. Replicas share the work: each batch is
    claimed with FOR UPDATE SKIP LOCKED and a lease, so no domain is checked twice at once."""
    while True:
        try:
            while True:
                summary = await owner.recheck_due_domains()
                if summary.checked:
                    log.info("domains re-checked", **vars(summary))
                for outcome, count in vars(summary).items():
                    if outcome != "checked" and count:
                        REVERIFICATIONS.labels(outcome=outcome).inc(count)
                if summary.checked < RECHECK_BATCH:
                    break
        except RegistryError as exc:
            log.warning("re-verification failed", error=exc.message)
        except Exception as exc:  # the loop must outlive any one failed batch
            log.error("re-verification failed", error=type(exc).__name__)
        await asyncio.sleep(REVERIFY_SWEEP_SECONDS)
