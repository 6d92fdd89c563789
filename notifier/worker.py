"""The long-running notifier worker (``kopa notify worker``) and the one-shot run.

Each worker process plans from time to time (planning is idempotent, so several workers may all
plan) and delivers due outbox rows in batches. With ``KOPA_REDIS_URL`` set, the rate limits and
429 pauses are shared through Redis, which is what several workers need; without it a worker
keeps them in memory, which is right for one worker (SQLite, the demo).

Settings: environment variables ``KOPA_NOTIFY_*`` (below), the database of the loan API
(``KOPA_DATABASE_URL``), the gateways of ``bot.config`` (``KOPA_TELEGRAM__*``,
``KOPA_WHATSAPP__*``) and ``KOPA_REDIS_URL``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from api.core.db import build_engine
from bot.channels.base import ChannelGateway
from bot.runtime import tune_gc
from notifier.config import CampaignConfig, load_campaigns
from notifier.delivery import Deliverer
from notifier.jobs import DeliveryStats
from notifier.judging import JudgingProcess
from notifier.planner import HighRiskLoans, Planner
from notifier.ratelimit import (
    LocalRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    limits_from_config,
)

logger = logging.getLogger(__name__)
# Planning is idempotent, but a 100 000-loan plan is work best done by one worker at a time.
PLAN_LOCK = 0x6B6F7061  # "kopa"
# A lane whose pass failed (the database or Redis away) tries again after these waits (doubling).
LANE_BACKOFF_FIRST = 0.5
LANE_BACKOFF_MAX = 15.0


class NotifierSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KOPA_NOTIFY_", env_file=".env", extra="ignore")

    # Rows claimed at a time, split over the lanes; a lane's share is claimed and judged in
    # chunks (delivery.CHUNK_SECONDS of the channel's rate) and its lease is renewed meanwhile.
    batch_size: int = 2000
    poll_seconds: float = 1.0
    # Planning is idempotent; every worker may plan. 0 turns planning off for this worker.
    plan_every_seconds: float = 900.0
    # Several deployments (or tests) may share one Redis: keep their keys apart.
    redis_prefix: str = "kopa:notify"
    # Lanes per worker: each claims, judges and sends its own batches, so that one lane's
    # database round trips overlap another's sends.
    concurrency: int = 4
    # On PostgreSQL, claim, judge and record in a process beside the worker's (see
    # notifier.judging), so that its event loop keeps its send slots.
    judging_process: bool = True
    # The judging process works ahead of the lanes (a chunk is judged while the one before it is
    # sent), while each of the worker's sends is due at its own instant: when the cores are
    # short, the operating system should run the worker first, so the judging process is the
    # nicer of the two. Only a little nicer: it must not wait behind every other busy process on
    # the host either, or the lanes run out of judged chunks. The runs behind the default are in
    # bench/README.md ("Beside other busy processes").
    judging_niceness: int = Field(default=5, ge=0, le=19)

    def connections(self) -> int:
        """Database connections a worker keeps: one per lane, the marks' and planning's."""
        return self.concurrency + 2


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def build_limiter(
    config: CampaignConfig, redis_url: str | None, prefix: str
) -> tuple[RateLimiter, Any]:
    """The shared Redis limiter when Redis is configured, else an in-process one."""
    limits = limits_from_config(config.channels)
    if not redis_url:
        return LocalRateLimiter(limits), None
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    return RedisRateLimiter(client, limits, prefix=prefix), client


@dataclass
class Worker:
    session_factory: Callable[[], Session]
    gateways: dict[str, ChannelGateway]
    limiter: RateLimiter
    settings: NotifierSettings
    worker_id: str
    config: CampaignConfig
    judging: JudgingProcess | None = None
    high_risk: HighRiskLoans | None = None

    def __post_init__(self) -> None:
        self.deliverer = Deliverer(
            session_factory=self.session_factory,
            gateways=self.gateways,
            worker_id=self.worker_id,
            limiter=self.limiter,
            config=self.config,
            prefetch=True,
            judging=self.judging,
        )
        self.totals = DeliveryStats()
        self._last_plan: float | None = None

    def plan_if_due(self, loop_time: float) -> int:
        every = self.settings.plan_every_seconds
        if every <= 0 or (self._last_plan is not None and loop_time - self._last_plan < every):
            return 0
        self._last_plan = loop_time
        with self.session_factory() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql" and not session.scalar(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": PLAN_LOCK}
            ):
                return 0  # another worker is planning; its rows serve everyone
            planner = Planner(self.config, high_risk=self.high_risk)
            return planner.plan(session, datetime.now(UTC), write=True).inserted

    async def run(self, stop: asyncio.Event) -> DeliveryStats:
        """Plan when due and deliver in ``concurrency`` lanes until ``stop`` is set.

        Each lane claims and delivers its own batches, so a lane waiting for slots or answers
        never holds the others back.
        """
        await self.deliverer.warm_up(self.settings.connections())
        lanes = [
            asyncio.create_task(self._lane(stop)) for _ in range(max(1, self.settings.concurrency))
        ]
        planning = asyncio.create_task(self._plan_loop(stop))
        try:
            await asyncio.gather(*lanes)
        finally:
            planning.cancel()
        return self.totals

    async def _plan_loop(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.plan_if_due, loop.time())
            except Exception as exc:
                # A lost database must not end planning for the life of the worker: the plan
                # is idempotent and runs again at its next turn.
                logger.error("planning failed: %s", type(exc).__name__)
                self._last_plan = None
            await _wait(stop, self.settings.poll_seconds)

    async def _lane(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                stats = await self.deliverer.run_once(limit=self._per_lane())
            except Exception as exc:
                # A lost database or Redis connection must not end the worker: the rows of the
                # failed pass come back when their lease expires (sending ones as unknown), and
                # the lane tries again, waiting longer each time while the failures last.
                failures += 1
                wait = min(LANE_BACKOFF_MAX, LANE_BACKOFF_FIRST * 2 ** (failures - 1))
                logger.error("delivery pass failed: %s; next in %.1f s", type(exc).__name__, wait)
                await _wait(stop, wait)
                continue
            failures = 0
            self.totals.add(stats)
            if stats.claimed == 0:
                await _wait(stop, self.settings.poll_seconds)

    def _per_lane(self) -> int:
        return max(1, self.settings.batch_size // max(1, self.settings.concurrency))

    async def pass_once(self) -> DeliveryStats:
        """One batch per lane, the lanes side by side (``kopa notify run``)."""
        lanes = max(1, self.settings.concurrency)
        results = await asyncio.gather(
            *(self.deliverer.run_once(limit=self._per_lane()) for _ in range(lanes))
        )
        stats = DeliveryStats()
        for item in results:
            stats.add(item)
        self.totals.add(stats)
        return stats


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


async def run_worker(
    *, worker_id: str | None = None, once: bool = False, high_risk: HighRiskLoans | None = None
) -> DeliveryStats:
    """Run the worker until SIGTERM/SIGINT (or one pass with ``once``); ``high_risk`` as the
    planner's (:class:`notifier.planner.Planner`)."""
    from api.core.config import get_settings
    from bot.channels.registry import build_channels
    from bot.config import get_bot_settings

    settings = NotifierSettings()
    bot_settings = get_bot_settings()
    config = load_campaigns()
    url = get_settings().database_url
    # No ping per checkout here: this process's transactions are the marks, 20 a second just
    # before their sends leave. A lost connection invalidates the pool at its first failure, and
    # the marks and records try again (outbox.reconnecting); claims, judging and records in
    # the judging process do ping (judging._start), off the send path.
    worker_id = worker_id or default_worker_id()
    pool: dict[str, Any] = (
        {
            "pool_size": settings.connections(),
            "pool_pre_ping": False,
            "pool_recycle": 300,
            # pg_stat_activity tells which worker holds which connection.
            "connect_args": {"application_name": f"kopa-notify {worker_id}"[:63]},
        }
        if url.startswith("postgresql")
        else {}
    )
    engine = build_engine(url, **pool)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    limiter, redis_client = build_limiter(config, bot_settings.redis_url, settings.redis_prefix)
    channels = build_channels(bot_settings)
    await channels.start(receive=False)
    judging = (
        JudgingProcess(url, worker_id, list(channels.gateways), niceness=settings.judging_niceness)
        if settings.judging_process and url.startswith("postgresql")
        else None
    )
    worker = Worker(
        session_factory=factory,
        gateways=channels.gateways,
        limiter=limiter,
        settings=settings,
        worker_id=worker_id,
        config=config,
        judging=judging,
        high_risk=high_risk,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def shut_down() -> None:
        worker.deliverer.stopping = True
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shut_down)
    tune_gc()
    try:
        if once:
            worker.plan_if_due(loop.time())
            return await worker.pass_once()
        return await worker.run(stop)
    finally:
        worker.deliverer.close()
        await channels.aclose()
        if redis_client is not None:
            await redis_client.aclose()
        engine.dispose()
