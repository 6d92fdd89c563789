"""Process each inbound update once, though providers deliver some of them twice.

Telegram repeats an update it got no 2xx for, and WhatsApp retries webhooks; both may also race
two deliveries of the same update. :meth:`Deduper.first_time` answers True exactly once per key
within the TTL: atomically with Redis ``SET NX EX`` (shared by every gateway replica), or with an
in-process TTL set when no Redis is configured (one replica only).
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

    async def aclose(self) -> None: ...


class MemoryDeduper:
    """An in-process TTL set, bounded so a flood of ids cannot grow it without limit."""

    def __init__(self, ttl_seconds: float, *, max_entries: int = 200_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    async def first_time(self, key: str) -> bool:
        now = time.monotonic()
        while self._seen:
            oldest_key, expires = next(iter(self._seen.items()))
            if expires > now and len(self._seen) < self._max:
                break
            del self._seen[oldest_key]
        known = self._seen.get(key)
        if known is not None and known > now:
            return False
        self._seen[key] = now + self._ttl
        self._seen.move_to_end(key)
        return True

    async def aclose(self) -> None:
        self._seen.clear()


class RedisDeduper:
    def __init__(self, url: str, ttl_seconds: int, *, prefix: str = "kopa:inbound:") -> None:
        self._redis = aioredis.Redis.from_url(url)
        self._ttl = ttl_seconds
        self._prefix = prefix

    async def first_time(self, key: str) -> bool:
        claimed = await self._redis.set(self._prefix + key, b"1", nx=True, ex=self._ttl)
        return bool(claimed)

    async def aclose(self) -> None:
        await self._redis.aclose()


def build_deduper(
    redis_url: str | None, ttl_seconds: int, *, prefix: str = "kopa:inbound:"
) -> Deduper:
    if redis_url:
        return RedisDeduper(redis_url, ttl_seconds, prefix=prefix)
    return MemoryDeduper(ttl_seconds)
