"""Process each inbound update once, though providers deliver some of them twice.

Telegram repeats an update it got no 2xx for, and WhatsApp retries webhooks; both may also race
two deliveries of the same update. For chat messages the authority is the durable inbox's unique
key (:mod:`bot.inbox`); this store only spares the database a write for a redelivery: a key is
:meth:`~Deduper.remember`-ed once its update is stored, and :meth:`~Deduper.seen` before storing
skips what is stored already. A key is never remembered before its update is stored, so a
redelivery of an update that was lost is never discarded here.

:meth:`Deduper.first_time` answers True exactly once per key within the TTL (WhatsApp delivery
statuses, which have no inbox): atomically with Redis ``SET NX EX`` (shared by every gateway
replica), or with an in-process TTL set when no Redis is configured (one replica only).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

import redis.asyncio as aioredis


class Deduper(Protocol):
    async def first_time(self, key: str) -> bool:
        """Claim ``key``; True for the first caller, False for every repeat within the TTL."""
        ...

    async def seen(self, key: str) -> bool:
        """Whether ``key`` was remembered or claimed within the TTL."""
        ...

    async def remember(self, key: str) -> None:
        """Note ``key`` (its update is stored) for the TTL."""
        ...

    async def aclose(self) -> None: ...


class MemoryDeduper:
    """An in-process TTL set, bounded so a flood of ids cannot grow it without limit."""

    def __init__(self, ttl_seconds: float, *, max_entries: int = 200_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest_key, expires = next(iter(self._seen.items()))
            if expires > now and len(self._seen) < self._max:
                break
            del self._seen[oldest_key]

    async def first_time(self, key: str) -> bool:
        if await self.seen(key):
            return False
        await self.remember(key)
        return True

    async def seen(self, key: str) -> bool:
        now = time.monotonic()
        self._expire(now)
        known = self._seen.get(key)
        return known is not None and known > now

    async def remember(self, key: str) -> None:
        self._seen[key] = time.monotonic() + self._ttl
        self._seen.move_to_end(key)

    async def aclose(self) -> None:
        self._seen.clear()


REDIS_CONNECTIONS = 16


class RedisDeduper:
    def __init__(self, url: str, ttl_seconds: int, *, prefix: str = "kopa:inbound:") -> None:
        # Short timeouts: while Redis is unreachable every webhook waits on it before the inbox.
        # A bounded pool that waits for a free connection: a burst of a thousand webhooks would
        # otherwise open a connection each, and those that miss the connect timeout fall back
        # to the inbox for no reason but the burst.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=REDIS_CONNECTIONS,
            timeout=0.5,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
            retry_on_timeout=False,
        )
        self._redis = aioredis.Redis.from_pool(pool)
        self._ttl = ttl_seconds
        self._prefix = prefix

    async def first_time(self, key: str) -> bool:
        claimed = await self._redis.set(self._prefix + key, b"1", nx=True, ex=self._ttl)
        return bool(claimed)

    async def seen(self, key: str) -> bool:
        return bool(await self._redis.exists(self._prefix + key))

    async def remember(self, key: str) -> None:
        await self._redis.set(self._prefix + key, b"1", ex=self._ttl)

    async def aclose(self) -> None:
        await self._redis.aclose()


def build_deduper(
    redis_url: str | None, ttl_seconds: int, *, prefix: str = "kopa:inbound:"
) -> Deduper:
    if redis_url:
        return RedisDeduper(redis_url, ttl_seconds, prefix=prefix)
    return MemoryDeduper(ttl_seconds)
