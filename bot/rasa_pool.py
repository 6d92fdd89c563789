"""Several Rasa replicas behind one gateway: each conversation sticks to one of them.

A conversation goes to the replica that ranks highest for its sender id (rendezvous hashing: a
hash of replica and sender), so one conversation is never processed by two replicas at once
while all are up, and when one goes down only its own conversations move, each to its next
ranked replica. The replicas share the tracker store (SQL) and the lock store (Redis), so a
conversation that moves carries on where it was; the lock store stays the safety net when a
replica comes back while another still finishes a turn.

Each gateway process sends a replica at most ``concurrency`` turns at a time; the others wait
their turn here, up to ``queue_seconds``. Under a burst (a campaign's replies) a replica given
every turn at once holds them all, each slower, until they pass the gateway's deadline (the
borrower hears "try again" and the turn is lost); a queue here answers every turn, later. The cap
must still leave the replica enough turns to overlap: Rasa's event loop waits on the action
server and on its (synchronous) tracker store. bench/chat, one replica behind two gateways: 9.1
turns a second with 4 in flight per gateway (64 conversations), 10.3-10.9 with 16; at 200
conversations 9.5 with 16 against 11.2 for bare Rasa given all 200 at once, and 13.1 against 12.9
with 32 (and 32 inbox workers, ``KOPA_INBOX_WORKERS``, which bound a gateway's turns in all).

A replica that refuses the connection, or drops it mid-answer (killed), is out of rotation for
``retry_after`` seconds and the message goes to the next replica at once: no turn is lost, and
a turn the dead replica half did is done again under the same channel message id, which the
loan API's idempotency keys turn into one record. A replica that is merely slow is not left:
sending the turn elsewhere too would run it twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.rasa_client import DEFAULT_TIMEOUT, RasaClient, RasaUnavailable, RasaUnreachable

logger = logging.getLogger(__name__)

# Long enough not to hammer a replica that is restarting, short enough that a restarted one is
# back in rotation within seconds.
RETRY_AFTER_SECONDS = 5.0
# Turns one gateway process has in flight at one replica (bench/chat measures the choice).
CONCURRENCY = 32
# How long a turn may wait for one of those slots before the borrower hears "try again".
QUEUE_SECONDS = 60.0
# How often replicas named by DNS are looked up again (scaled up or down, restarted elsewhere).
REDISCOVER_SECONDS = 10.0


def rasa_urls(setting: str) -> list[str]:
    """The replicas named by ``KOPA_RASA_URL``: one URL, or several separated by commas."""
    urls = [url.strip().rstrip("/") for url in setting.split(",") if url.strip()]
    if not urls:
        raise ValueError("KOPA_RASA_URL names no Rasa server")
    return urls


def resolve_replicas(url: str) -> list[str]:
    """Every address ``url``'s host resolves to, as replica URLs: how Docker Compose
    (``deploy.replicas``) and a Kubernetes headless Service name their replicas."""
    parts = urlsplit(url)
    port = parts.port or 5005
    try:
        found = socket.getaddrinfo(parts.hostname or "", port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    hosts = sorted({str(address[4][0]) for address in found})
    return [f"{parts.scheme}://{f'[{h}]' if ':' in h else h}:{port}" for h in hosts]


def rank(sender: str, urls: Sequence[str]) -> list[str]:
    """``urls`` in the order ``sender``'s conversation prefers them (highest weight first)."""

    def weight(url: str) -> int:
        digest = hashlib.blake2b(f"{url}\x00{sender}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    return sorted(urls, key=weight, reverse=True)


@dataclass
class Replica:
    url: str
    client: RasaClient
    slots: asyncio.Semaphore
    out_until: float = 0.0  # monotonic time before which it is out of rotation


class RasaPool:
    """Send each user message to its conversation's replica; same interface as
    :class:`~bot.rasa_client.RasaClient`."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry_after: float = RETRY_AFTER_SECONDS,
        concurrency: int = CONCURRENCY,
        queue_seconds: float = QUEUE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        discover: Callable[[], list[str]] | None = None,
        rediscover_seconds: float = REDISCOVER_SECONDS,
    ) -> None:
        """``discover``: a function naming the replicas now (DNS), asked again every
        ``rediscover_seconds``; ``urls`` are then only the ones to start with."""
        if not urls and discover is None:
            raise ValueError("a Rasa pool needs at least one replica")
        self._timeout = timeout
        self._concurrency = concurrency
        self._replicas: dict[str, Replica] = {}
        self._retry_after = retry_after
        self._queue_seconds = queue_seconds
        self._clock = clock
        self._discover = discover
        self._rediscover_seconds = rediscover_seconds
        self._next_discovery = 0.0 if discover is not None else float("inf")
        self._retired: list[RasaClient] = []
        self._update(list(urls))

    def _update(self, urls: list[str]) -> None:
        """Take ``urls`` as the replicas: new ones join, gone ones leave (their clients are
        closed at :meth:`aclose`, a turn may still be using them)."""
        for url in urls:
            if url not in self._replicas:
                client = RasaClient(url, timeout=self._timeout)
                self._replicas[url] = Replica(url, client, asyncio.Semaphore(self._concurrency))
        for url in [u for u in self._replicas if u not in urls]:
            self._retired.append(self._replicas.pop(url).client)

    def _rediscover(self) -> None:
        if self._discover is None or self._clock() < self._next_discovery:
            return
        self._next_discovery = self._clock() + self._rediscover_seconds
        found = self._discover()
        if found:  # a DNS hiccup keeps the replicas known rather than none
            self._update(found)

    def route(self, sender: str) -> list[str]:
        """The replicas to try for ``sender``, in order: those in rotation first."""
        self._rediscover()
        now = self._clock()
        ranked = rank(sender, list(self._replicas))
        up = [url for url in ranked if self._replicas[url].out_until <= now]
        return up + [url for url in ranked if url not in up]

    async def send(
        self, sender: str, message: str, metadata: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Post the message to the conversation's replica, or the next one if it is down.

        Raises:
            RasaUnavailable: no replica answered usefully, or none had a free slot in time.
        """
        last: RasaUnavailable | None = None
        for url in self.route(sender):
            replica = self._replicas.get(url)
            if replica is None:
                continue
            try:
                async with asyncio.timeout(self._queue_seconds):
                    await replica.slots.acquire()
            except TimeoutError as exc:
                raise RasaUnavailable("every slot of the replica stayed busy") from exc
            try:
                replies = await replica.client.send(sender, message, metadata)
            except RasaUnreachable as exc:
                replica.out_until = self._clock() + self._retry_after
                logger.warning("rasa replica %s out of rotation: %s", url, exc)
                last = exc
                continue
            finally:
                replica.slots.release()
            return replies
        raise last or RasaUnavailable("no replica")

    async def healthy(self) -> bool:
        """Whether any replica answers."""
        for replica in self._replicas.values():
            if await replica.client.healthy():
                return True
        return False

    async def aclose(self) -> None:
        for client in [*(r.client for r in self._replicas.values()), *self._retired]:
            await client.aclose()
