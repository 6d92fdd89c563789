"""Send-rate limits per channel and per chat, and the pause after a provider's 429 (rule R-6).

GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp per key): each key
stores its *theoretical arrival time*; a send is allowed when ``tat - tolerance <= now`` and then
pushes ``tat`` one emission interval further. A channel's overall limit and the chat's own limit
are checked and taken together, so a refused chat does not consume the channel's budget.

Two ways to take slots: :meth:`~RateLimiter.try_acquire` takes one slot now (or says how long to
wait), and :meth:`~RateLimiter.reserve` books evenly spaced slots for many recipients in one call,
each at its own instant within a short horizon, which is how the delivery worker keeps up with a
fast channel: a late wake-up does not lose a booked slot, so booked slots need no burst tolerance,
and at most ``rate`` of them fall in any one second however late each one leaves (within the
``headroom``).

:class:`LocalRateLimiter` serves a single worker process; :class:`RedisRateLimiter` runs the same
algorithm in one Lua script on Redis (its clock, so workers on several machines agree) and keeps
the 429 pause in Redis, so that no worker sends to that channel before ``retry_after`` has passed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from notifier.config import DEFAULT_HEADROOM, ChannelLimits


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
    headroom: float = DEFAULT_HEADROOM

    def headroom_at(self, rate: float) -> float:
        if rate >= 10:
            # Room for one early send (a late wake-up made good) and one for network jitter.
            return min(0.5, max(self.headroom, 3.0 / rate))
        return self.headroom

    def lateness_allowed(self) -> float:
        """How late a booked send may still leave, in seconds: a quarter of the headroom's share
        of a second (10 ms of the 40 ms at 4 %), the rest being left to what happens between
        this check and the provider's count of the request: the client library's work, a
        process kept waiting for a core, the provider's own delay, which on a busy machine can
        be several times that quarter. Booked slots are paced at
        ``(1 - headroom)`` of the rate, so sends that each reach the provider at most that much
        later than their slot still stay under the rate in every second."""
        return 0.25 * self.headroom_at(self.per_second)

    def bucket(self, rate: float) -> tuple[float, float]:
        """(emission interval, tolerance) in seconds for ``rate`` sends per second.

        The tolerance lets ``rate * headroom - 2`` sends run early; with the slower pace that
        keeps any one second of grants at or under ``rate - 1``, leaving one send of room for
        jitter between the grant and the provider's clock.
        """
        headroom = self.headroom_at(rate)
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

    async def reserve(
        self,
        channel: str,
        recipients: Sequence[str],
        *,
        lead: float,
        horizon: float,
        moved: bool = False,
        hold: float | None = None,
    ) -> Reservation:
        """Book slots for as many ``recipients`` (in order) as fit between ``lead`` and
        ``lead + horizon`` seconds from now; see :class:`Reservation`.

        ``moved``: these sends were booked once and missed their slot; they get later channel
        slots without waiting for their chat (the chat's slot is theirs), and each chat's next
        slot moves with them.

        ``hold``: each booked chat gets no other slot until :meth:`release` (or for ``hold``
        seconds after its slot, if its sender dies first), so that its next send is spaced
        from when this one was answered, however late it left.
        """
        ...

    async def release(
        self, channel: str, recipients: Sequence[str], waits: Sequence[float]
    ) -> None:
        """End the ``hold`` of chats booked with one: each chat's next slot is one chat interval
        from now (the request to it has been answered, or never left), or ``waits[i]`` seconds
        when longer (a per-recipient limit)."""
        ...

    async def pause(self, channel: str, seconds: float) -> None:
        """Nothing goes to ``channel`` for ``seconds`` (a provider's ``retry_after``)."""
        ...

    async def paused_for(self, channel: str) -> float:
        """Seconds left of a pause on ``channel`` (0.0 when none)."""
        ...

    async def back_off(self, channel: str, recipient: str, seconds: float) -> None:
        """Nothing goes to ``recipient`` on ``channel`` for ``seconds`` (a per-recipient limit
        such as WhatsApp's pair rate, 131056); the channel and other chats are untouched."""
        ...


@dataclass(frozen=True)
class Reservation:
    """Booked slots: ``delays[i]`` seconds from the call for ``recipients[i]``, or ``None`` when
    it got no slot in the horizon; ``retry_in`` is how long to wait before asking again when
    nothing was booked (a 429 pause, or a channel fully booked by other workers)."""

    delays: tuple[float | None, ...]
    retry_in: float = 0.0

    @property
    def booked(self) -> int:
        return sum(1 for d in self.delays if d is not None)


def _book(
    now: float,
    channel_tat: float,
    chat_tats: Sequence[float],
    channel_bucket: tuple[float, float],
    chat_bucket: tuple[float, float],
    lead: float,
    horizon: float,
    moved: bool = False,
    hold: float | None = None,
    chat_keys: Sequence[str] | None = None,
) -> tuple[list[float | None], float, list[float | None], float]:
    """The booking rule shared by both limiters (the Lua script mirrors it line for line).

    Slots follow the channel's last booked slot, one emission interval apart. A request waits
    until all of it fits before ``lead + horizon`` (unless it could never fit), so that callers
    book whole chunks in turn instead of polling for a slot or two each. A ``moved`` send holds
    its chat's slot already: it is not checked against it, but pushes it to a chat interval
    after its new slot. With ``hold``, a booked chat's next slot is ``hold`` after this one
    (until released). ``chat_keys`` names each chat, so that a chat named twice sees its first
    booking.

    Returns:
        (delays, new channel tat, new chat tats or None where unchanged, retry_in).
    """
    channel_interval, _ = channel_bucket
    chat_interval, chat_tolerance = chat_bucket
    tat = max(channel_tat, now + lead)
    last = now + lead + horizon
    span = (len(chat_tats) - 1) * channel_interval
    if tat > last or (tat + span > last and span <= horizon):
        return [None] * len(chat_tats), channel_tat, [None] * len(chat_tats), tat + span - last
    delays: list[float | None] = []
    new_chats: list[float | None] = []
    retry_in = 0.0
    booked_now: dict[str, float] = {}
    for index, chat_tat in enumerate(chat_tats):
        key = chat_keys[index] if chat_keys is not None else None
        if key is not None and key in booked_now:
            chat_tat = booked_now[key]
        slot = tat
        if slot > last:
            delays.append(None)
            new_chats.append(None)
            continue
        if moved:
            new_chats.append(max(chat_tat, slot + chat_interval))
        elif chat_tat - chat_tolerance > slot:
            # This chat had a message too recently: leave the channel's slot to the next one.
            delays.append(None)
            new_chats.append(None)
            retry_in = max(retry_in, min(chat_tat - chat_tolerance - slot, 1.0))
            continue
        elif hold is not None:
            new_chats.append(slot + hold)
        else:
            new_chats.append(max(chat_tat, slot) + chat_interval)
        if key is not None and new_chats[-1] is not None:
            booked_now[key] = new_chats[-1]
        delays.append(slot - now)
        tat = slot + channel_interval
    return delays, tat, new_chats, max(retry_in, 0.001)


async def acquire(limiter: RateLimiter, channel: str, recipient: str, max_wait: float) -> float:
    """Wait for a send slot; give up, returning the wait, when it is beyond ``max_wait``."""
    while True:
        wait = await limiter.try_acquire(channel, recipient)
        if wait <= 0:
            return 0.0
        if wait > max_wait:
            return wait
        await asyncio.sleep(wait)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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

    async def reserve(
        self,
        channel: str,
        recipients: Sequence[str],
        *,
        lead: float,
        horizon: float,
        moved: bool = False,
        hold: float | None = None,
    ) -> Reservation:
        now = time.monotonic()
        paused = self._paused_until.get(channel, 0.0) - now
        if paused > 0:
            return Reservation((None,) * len(recipients), retry_in=paused)
        limits = self._limits.get(channel)
        if limits is None:
            return Reservation((lead,) * len(recipients))
        chat_keys = [f"{channel}:{_chat_key(r)}" for r in recipients]
        delays, tat, chat_tats, retry_in = _book(
            now,
            self._tat.get(channel, now),
            [self._tat.get(key, 0.0) for key in chat_keys],
            limits.bucket(limits.per_second),
            limits.bucket(limits.per_chat_per_second),
            lead,
            horizon,
            moved,
            hold,
            chat_keys,
        )
        self._tat[channel] = tat
        for key, chat_tat in zip(chat_keys, chat_tats, strict=True):
            if chat_tat is not None:
                self._tat[key] = chat_tat
        booked = any(d is not None for d in delays)
        return Reservation(tuple(delays), retry_in=0.0 if booked else retry_in)

    async def release(
        self, channel: str, recipients: Sequence[str], waits: Sequence[float]
    ) -> None:
        limits = self._limits.get(channel)
        if limits is None:
            return
        now = time.monotonic()
        interval = limits.bucket(limits.per_chat_per_second)[0]
        for recipient, wait in zip(recipients, waits, strict=True):
            self._tat[f"{channel}:{_chat_key(recipient)}"] = now + max(interval, wait)

    async def pause(self, channel: str, seconds: float) -> None:
        until = time.monotonic() + seconds
        self._paused_until[channel] = max(self._paused_until.get(channel, 0.0), until)

    async def paused_for(self, channel: str) -> float:
        return max(0.0, self._paused_until.get(channel, 0.0) - time.monotonic())

    async def back_off(self, channel: str, recipient: str, seconds: float) -> None:
        key = f"{channel}:{_chat_key(recipient)}"
        self._tat[key] = max(self._tat.get(key, 0.0), time.monotonic() + seconds)


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

# KEYS: channel bucket, pause key, then one chat bucket per recipient. ARGV: channel interval,
# chat interval, chat tolerance, lead, horizon, moved (1: sends that hold their chat's slot),
# hold (seconds a booked chat is held after its slot until released; "" for none).
# Mirrors _book(); returns {"p", seconds} during a pause, else {retry_in, delay...} with one
# delay per recipient ("" when not booked; recipients after the last slot are left out).
_RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return {'p', tostring(paused / 1000)} end
local channel_interval = tonumber(ARGV[1])
local chat_interval = tonumber(ARGV[2])
local chat_tolerance = tonumber(ARGV[3])
local lead = tonumber(ARGV[4])
local horizon = tonumber(ARGV[5])
local moved = ARGV[6] == '1'
local hold = tonumber(ARGV[7] or '')
local stored = tonumber(redis.call('GET', KEYS[1]) or '0')
local tat = stored
if tat < now + lead then tat = now + lead end
local last = now + lead + horizon
local span = (#KEYS - 3) * channel_interval
if tat > last or (tat + span > last and span <= horizon) then
  return {string.format('%.6f', tat + span - last)}
end
local out = {''}
local retry_in = 0
local booked = 0
for i = 3, #KEYS do
  local slot = tat
  if slot > last then break end
  local chat_tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if not moved and chat_tat - chat_tolerance > slot then
    out[#out + 1] = ''
    local wait = math.min(chat_tat - chat_tolerance - slot, 1.0)
    if wait > retry_in then retry_in = wait end
  else
    out[#out + 1] = string.format('%.6f', slot - now)
    local new_chat
    if moved then
      new_chat = math.max(chat_tat, slot + chat_interval)
    elseif hold then
      new_chat = slot + hold
    else
      new_chat = math.max(chat_tat, slot) + chat_interval
    end
    redis.call('SET', KEYS[i], string.format('%.6f', new_chat),
               'PX', math.ceil((new_chat - now) * 1000) + 1000)
    tat = slot + channel_interval
    booked = booked + 1
  end
end
if booked > 0 then
  redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
end
if retry_in < 0.001 then retry_in = 0.001 end
out[1] = string.format('%.6f', retry_in)
return out
"""

# KEYS: the chat bucket. ARGV: seconds. The chat's next slot moves to at least now + seconds.
_BACK_OFF_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_at = now + tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < until_at then
  redis.call('SET', KEYS[1], string.format('%.6f', until_at),
             'PX', math.ceil((until_at - now) * 1000) + 1000)
end
return 1
"""

# KEYS: chat buckets. ARGV: chat interval, then one wait per key. Each chat's next slot is one
# chat interval from now, or its wait when longer (ends the hold of a reservation).
_RELEASE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
for i = 1, #KEYS do
  local free = now + math.max(interval, tonumber(ARGV[i + 1]))
  redis.call('SET', KEYS[i], string.format('%.6f', free),
             'PX', math.ceil((free - now) * 1000) + 1000)
end
return 1
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
        self._reserve = client.register_script(_RESERVE_LUA)
        self._back_off = client.register_script(_BACK_OFF_LUA)
        self._release = client.register_script(_RELEASE_LUA)

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
        return float(_text(await self._gcra(keys=keys, args=args)))

    async def reserve(
        self,
        channel: str,
        recipients: Sequence[str],
        *,
        lead: float,
        horizon: float,
        moved: bool = False,
        hold: float | None = None,
    ) -> Reservation:
        if not recipients:
            return Reservation(())
        limits = self._limits.get(channel)
        if limits is None:
            limits = Limits(per_second=1e9, per_chat_per_second=1e9)
        channel_interval, _ = limits.bucket(limits.per_second)
        chat_interval, chat_tolerance = limits.bucket(limits.per_chat_per_second)
        keys = [
            f"{self._prefix}:rate:{channel}",
            f"{self._prefix}:pause:{channel}",
            *(f"{self._prefix}:rate:{channel}:{_chat_key(r)}" for r in recipients),
        ]
        args = [
            channel_interval,
            chat_interval,
            chat_tolerance,
            lead,
            horizon,
            int(moved),
            "" if hold is None else hold,
        ]
        answer = [_text(item) for item in await self._reserve(keys=keys, args=args)]
        if answer[0] == "p":
            return Reservation((None,) * len(recipients), retry_in=float(answer[1]))
        delays = [float(item) if item else None for item in answer[1:]]
        delays += [None] * (len(recipients) - len(delays))
        booked = any(d is not None for d in delays)
        return Reservation(tuple(delays), retry_in=0.0 if booked else float(answer[0]))

    async def release(
        self, channel: str, recipients: Sequence[str], waits: Sequence[float]
    ) -> None:
        if not recipients:
            return
        limits = self._limits.get(channel)
        if limits is None:
            limits = Limits(per_second=1e9, per_chat_per_second=1e9)
        keys = [f"{self._prefix}:rate:{channel}:{_chat_key(r)}" for r in recipients]
        interval = limits.bucket(limits.per_chat_per_second)[0]
        await self._release(keys=keys, args=[interval, *waits])

    async def pause(self, channel: str, seconds: float) -> None:
        await self._pause(keys=[f"{self._prefix}:pause:{channel}"], args=[int(seconds * 1000) + 1])

    async def paused_for(self, channel: str) -> float:
        left = await self._redis.pttl(f"{self._prefix}:pause:{channel}")
        return max(0.0, int(left) / 1000)

    async def back_off(self, channel: str, recipient: str, seconds: float) -> None:
        key = f"{self._prefix}:rate:{channel}:{_chat_key(recipient)}"
        await self._back_off(keys=[key], args=[seconds])
