"""Keep-alive connections to the loan API, shared by every action run of one event loop.

Why: each action run used to open its own HTTP client, so every API call of every turn opened a
new TCP connection. Under a burst (1000 turns on two shared cores, the L2 row of
``tests/reliability/test_gateway.py``) the API's accept loop fell behind, connects missed their
timeout and borrowers heard "try again shortly" for turns the API would have answered. A pool
reuses its connections; a connect that still fails is retried by the transport (nothing was sent,
so the retry cannot write twice).

The pool belongs to the event loop that made it: connections cannot move between loops, and a
test suite may run several loops in one process.
"""

from __future__ import annotations

import asyncio
import weakref

import httpx

# Under uvicorn's 5 s keep-alive, so the pool drops a connection before the server does.
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=32, keepalive_expiry=2.0)
CONNECT_RETRIES = 2

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)


def shared_client(base_url: str) -> httpx.AsyncClient:
    """The running loop's client for ``base_url``; callers give timeouts and headers per request
    and never close it."""
    loop = asyncio.get_running_loop()
    clients = _pools.setdefault(loop, {})
    client = clients.get(base_url)
    if client is None or client.is_closed:
        transport = httpx.AsyncHTTPTransport(limits=LIMITS, retries=CONNECT_RETRIES)
        client = httpx.AsyncClient(base_url=base_url, transport=transport)
        clients[base_url] = client
    return client
