"""Retention of raw events: ``TOKENLEDGER_RETENTION_DAYS`` applied now and then.

``tokenledger retention run`` (for cron) and ``serve`` (once an hour in each process,
see :func:`keep_applying`) both call :func:`apply`; the work itself, in small
transactions, is :mod:`tokenledger.store.retention`.
"""

from __future__ import annotations

import asyncio
import logging

from tokenledger.clock import Clock, now_us
from tokenledger.settings import Settings
from tokenledger.store import retention
from tokenledger.store.usage_store import UsageStore

log = logging.getLogger("tokenledger.retention")
EVERY_S = 3600.0


def apply(
    store: UsageStore, *, days: int, now: int, batch_size: int = retention.BATCH_SIZE
) -> retention.RetentionRun:
    """Delete the events that started before the UTC midnight ``days`` days before
    today (``now``, microseconds); rollups are kept."""
    done = retention.run(store, horizon_us=retention.cutoff(now, days), batch_size=batch_size)
    if done.deleted:
        log.info(
            "retention deleted events",
            extra={"events": done.deleted, "batches": done.batches, "horizon_us": done.horizon_us},
        )
    return done


async def keep_applying(
    store: UsageStore, *, days: int, clock: Clock, every_s: float = EVERY_S
) -> None:
    """Apply retention now, then every ``every_s`` seconds, until cancelled; a failure
    is logged and tried again next time."""
    while True:
        try:
            await asyncio.to_thread(apply, store, days=days, now=now_us(clock))
        except Exception:
            log.exception("retention failed; trying again later")
        await asyncio.sleep(every_s)


def start(store: UsageStore, *, settings: Settings, clock: Clock) -> asyncio.Task[None] | None:
    """In a running event loop, :func:`keep_applying` as a task when retention is set."""
    if settings.retention_days is None:
        return None
    return asyncio.create_task(keep_applying(store, days=settings.retention_days, clock=clock))
