"""Send-rate limits per channel and per chat, and the pause after a provider's 429 (rule R-6).

GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp per key): each key
stores its *theoretical arrival time*; a send is allowed when ``tat - tolerance <= now`` and then
pushes ``tat`` one emission interval further. A channel's overall limit and the chat's own limit
are checked and taken together, so a refused chat does not consume the channel's budget.

:class:`LocalRateLimiter` serves a single worker process; :class:`RedisRateLimiter` runs the same
algorithm in one Lua script on Redis (its clock, so workers on several machines agree) and keeps
the 429 pause in Redis, so that no worker sends to that channel before ``retry_after`` has passed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.notifier.config import ChannelLimits


@dataclass(frozen=True)
class Limits:
    """A provider's limits and the share of them kept as headroom.

    Sleeping is never exact: a send that wakes a little late loses its slot in a strict GCRA,
    and at high rates those losses add up. So the bucket paces at ``(1 - headroom)`` of the rate
    and may run ``headroom`` of a second's sends early to catch up: in any one second at most
    ``per_second`` sends pass, and a late wake-up is made good.
    """

    per_second: float
    per_chat_per_second: float
    headroom: float = 0.03

    def bucket(self, rate: float) -> tuple[float, float]:
        """(emission interval, tolerance) in seconds for ``rate`` sends per second.

        The tolerance lets ``rate * headroom - 2`` sends run early; with the slower pace that
        keeps any one second of grants at or under ``rate - 1``, leaving one send of room for
        jitter between the grant and the provider's clock.
        """
        headroom = self.headroom
        if rate >= 10:
            # Room for one early send (a late wake-up made good) and one for network jitter.
            headroom = min(0.5, max(headroom, 3.0 / rate))
        interval = 1.0 / (rate * (1.0 - headroom))
        burst = max(0, int(round(rate * headroom, 6)) - 2)
        return interval, burst * interval


def limits_from_config(channels: Mapping[str, ChannelLimits]) -> dict[str, Limits]:
    return {
        name: Limits(
            per_second=c.per_second, per_chat_per_second=c.per_chat_per_second, headroom=c.headroom
        )
        for name, c in channels.items()
    }


class RateLimiter(Protocol):
    async def try_acquire(self, channel: str, recipient: str) -> float:
        """Take a send to ``recipient`` on ``channel``: 0.0 when granted, else seconds to wait."""
        ...

    async def pause(self, channel: str, seconds: float) -> None:
        """Nothing goes to ``channel`` for ``seconds`` (a provider's ``retry_after``)."""
        ...

    async def paused_for(self, channel: str) -> float:
        """Seconds left of a pause on ``channel`` (0.0 when none)."""
        ...


async def acquire(limiter: RateLimiter, channel: str, recipient: str, max_wait: float) -> float:
    """Wait for a send slot; give up, returning the wait, when it is beyond ``max_wait``."""
    while True:
        wait = await limiter.try_acquire(channel, recipient)
        if wait <= 0:
            return 0.0
        if wait > max_wait:
            return wait
        await asyncio.sleep(wait)


def _chat_key(recipient: str) -> str:
    # Keys must not carry phone numbers or chat ids (personal data) in clear.
    return hashlib.sha256(recipient.encode()).hexdigest()[:20]


class LocalRateLimiter:
    """In-process GCRA: right for one worker (SQLite, ``kopa notify run``)."""

    def __init__(self, limits: Mapping[str, Limits]) -> None:
        self._limits = dict(limits)
        self._tat: dict[str, float] = {}
        self._paused_until: dict[str, float] = {}

    async def try_acquire(self, channel: str, recipient: str) -> float:
        now = time.monotonic()
        paused = self._paused_until.get(channel, 0.0) - now
        if paused > 0:
            return paused
        limits = self._limits.get(channel)
        if limits is None:
            return 0.0
        buckets = [
            (channel, *limits.bucket(limits.per_second)),
            (f"{channel}:{_chat_key(recipient)}", *limits.bucket(limits.per_chat_per_second)),
        ]
        wait = 0.0
        new_tats: list[tuple[str, float]] = []
        for key, interval, tolerance in buckets:
            tat = max(self._tat.get(key, now), now)
            wait = max(wait, tat - tolerance - now)
            new_tats.append((key, tat + interval))
        if wait > 0:
            return wait
        self._tat.update(new_tats)
        if len(self._tat) > 100_000:
            self._tat = {k: v for k, v in self._tat.items() if v > now}
        return 0.0

    async def pause(self, channel: str, seconds: float) -> None:
        until = time.monotonic() + seconds
        self._paused_until[channel] = max(self._paused_until.get(channel, 0.0), until)

    async def paused_for(self, channel: str) -> float:
        return max(0.0, self._paused_until.get(channel, 0.0) - time.monotonic())


# KEYS: channel bucket, chat bucket, pause key. ARGV: interval and tolerance for each bucket.
# Returns "0" when granted, else the seconds to wait, as a string (Redis would truncate a number).
_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local paused = redis.call('PTTL', KEYS[3])
if paused > 0 then return tostring(paused / 1000) end
local wait = 0
local tats = {}
for i = 1, 2 do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  local allow_at = tat - tolerance
  if allow_at - now > wait then wait = allow_at - now end
  tats[i] = tat + interval
end
if wait > 0 then return tostring(wait) end
for i = 1, 2 do
  redis.call('SET', KEYS[i], string.format('%.6f', tats[i]),
             'PX', math.ceil((tats[i] - now) * 1000) + 1000)
end
return '0'
"""

_PAUSE_LUA = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 1
"""


class RedisRateLimiter:
    """GCRA and 429 pauses shared by every worker through Redis."""

    def __init__(
        self, client: Any, limits: Mapping[str, Limits], prefix: str = "kopa:notify"
    ) -> None:
        self._redis = client
        self._limits = dict(limits)
        self._prefix = prefix
        self._gcra = client.register_script(_GCRA_LUA)
        self._pause = client.register_script(_PAUSE_LUA)

    async def try_acquire(self, channel: str, recipient: str) -> float:
        limits = self._limits.get(channel)
        if limits is None:
            limits = Limits(per_second=1e9, per_chat_per_second=1e9)
        channel_interval, channel_tolerance = limits.bucket(limits.per_second)
        chat_interval, chat_tolerance = limits.bucket(limits.per_chat_per_second)
        keys = [
            f"{self._prefix}:rate:{channel}",
            f"{self._prefix}:rate:{channel}:{_chat_key(recipient)}",
            f"{self._prefix}:pause:{channel}",
        ]
        args = [channel_interval, channel_tolerance, chat_interval, chat_tolerance]
        answer = await self._gcra(keys=keys, args=args)
        return float(answer.decode() if isinstance(answer, bytes) else answer)

    async def pause(self, channel: str, seconds: float) -> None:
        await self._pause(keys=[f"{self._prefix}:pause:{channel}"], args=[int(seconds * 1000) + 1])

    async def paused_for(self, channel: str) -> float:
        left = await self._redis.pttl(f"{self._prefix}:pause:{channel}")
        return max(0.0, int(left) / 1000)
