"""Claim-and-judge and outcome recording in a process of their own, beside a notifier worker.

A worker's event loop must wake within a few milliseconds of each booked send slot. Judging a
chunk (ORM rows, send-time facts, rules, rendering) and recording its outcomes are pure-Python
CPU work: in a thread of the worker they would hold the GIL while sends come due, and the event
loop would wake late for them. In a process of their own they only compete for a core, which the
operating system hands over far sooner than the GIL.

The judging process works for its worker under the worker's id (claims and leases are the
worker's), ends when the worker ends (even by SIGKILL), and is replaced if it dies.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any, cast

from sqlalchemy.orm import sessionmaker

from api.core.db import build_engine
from bot.runtime import tune_gc
from notifier.bookkeeping import Bookkeeper
from notifier.config import load_campaigns, load_templates
from notifier.jobs import DeliveryStats, Job

logger = logging.getLogger(__name__)
# The judging process's own bookkeeper (set by _start in that process).
_books: Bookkeeper | None = None


def application_name(worker_id: str) -> str:
    """How the judging process's connections show in ``pg_stat_activity``."""
    return f"kopa-notify-judging {worker_id}"[:63]


class JudgingProcess:
    """One process that claims, judges and records for one worker (PostgreSQL only)."""

    def __init__(
        self, url: str, worker_id: str, channels: Sequence[str], *, niceness: int = 0
    ) -> None:
        self._args = (url, worker_id, list(channels), niceness)
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawn: a clean process (not a fork of one running an event loop and threads) whose
        # parent is this worker, so that it can tell when the worker is gone.
        return ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=self._args,
        )

    async def _call(self, function: Any, *args: Any) -> Any:
        pool = self._pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
        except BrokenProcessPool:
            # It died (killed, out of memory): the next pass gets a new one; this pass fails
            # and its rows come back when their lease expires, as after a worker crash. Lanes
            # that saw the same death replace it once.
            if self._pool is pool:
                logger.error("the judging process died; starting another")
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._start()
            raise

    async def warm_up(self) -> None:
        await self._call(_warm_up)

    async def judge(
        self, limit: int, now: datetime | None, stats: DeliveryStats
    ) -> tuple[int, list[Job]]:
        """:meth:`Bookkeeper.claim_and_judge`, in the judging process."""
        result, counted = await self._call(_judge, limit, now)
        stats.add(counted)
        return cast(tuple[int, list[Job]], result)

    async def rejudge(
        self, ids: list[int], now: datetime | None, stats: DeliveryStats
    ) -> list[Job]:
        """:meth:`Bookkeeper.rejudge`, in the judging process."""
        jobs, counted = await self._call(_rejudge, ids, now)
        stats.add(counted)
        return cast(list[Job], jobs)

    async def record(
        self,
        jobs: list[Job],
        now: datetime | None,
        stats: DeliveryStats,
        waits: Mapping[str, float],
    ) -> None:
        """:meth:`Bookkeeper.finish`, in the judging process."""
        stats.add(await self._call(_record, jobs, now, dict(waits)))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# -- in the judging process ----------------------------------------------------------------
def _start(url: str, worker_id: str, channels: list[str], niceness: int) -> None:
    global _books
    parent = os.getppid()
    os.nice(niceness)
    threading.Thread(target=_end_with, args=(parent,), name="end-with-worker", daemon=True).start()
    engine = build_engine(
        url,
        pool_size=1,
        # A ping per claim or record (a few a second, in this process, off the send path)
        # finds a connection the database dropped (a restart) before the work is tried on it.
        pool_pre_ping=True,
        pool_recycle=300,
        connect_args={"application_name": application_name(worker_id)},
    )
    _books = Bookkeeper(
        session_factory=sessionmaker(bind=engine, expire_on_commit=False),
        # Rows of channels the worker has no gateway for are given back, as in the worker.
        channels=frozenset(channels),
        worker_id=worker_id,
        config=load_campaigns(),
        templates=load_templates(),
    )
    tune_gc()


def _end_with(parent: int) -> None:
    """Exit when the process that started this one is gone (a worker killed by SIGKILL leaves
    no judging process behind holding a database connection)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _judging() -> Bookkeeper:
    assert _books is not None, "not in a judging process"
    return _books


def _warm_up() -> None:
    _judging().warm_up(connections=1)


def _judge(limit: int, now: datetime | None) -> tuple[tuple[int, list[Job]], DeliveryStats]:
    stats = DeliveryStats()
    return _judging().claim_and_judge(limit, now, stats), stats


def _rejudge(ids: list[int], now: datetime | None) -> tuple[list[Job], DeliveryStats]:
    stats = DeliveryStats()
    return _judging().rejudge(ids, now, stats), stats


def _record(jobs: list[Job], now: datetime | None, waits: dict[str, float]) -> DeliveryStats:
    stats = DeliveryStats()
    _judging().finish(jobs, now, stats, waits)
    return stats
