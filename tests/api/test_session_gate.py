"""The loan API under more simultaneous requests than it has database connections.

A burst of replies to a campaign makes the action server call the API far more often at once
than one process has connections. Each request's sync dependencies and route run in separate
worker threads while its session keeps its connection, so without a cap on the requests that
hold a session the API deadlocked: every worker thread waited for a connection held by a
request waiting for a thread, until the pool's timeout failed them all (fastapi/fastapi#3205;
seen in ``bench/chat`` as minutes without an answer and "try again" in chat).

A real API process on PostgreSQL with two connections, asked 120 identity lookups at once
(two thread hops each: the chat's dependency, then the route).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kopa.stack import Service, start_api, wait_healthy
from tests.services import scratch_postgres

pytestmark = pytest.mark.postgres

TOKEN = f"gate-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with scratch_postgres("kopa_gate") as url:
        service = start_api(
            url,
            TOKEN,
            tmp_path_factory.mktemp("gate"),
            {"KOPA_DATABASE_POOL_SIZE": "2", "KOPA_DATABASE_MAX_OVERFLOW": "0"},
        )
        try:
            wait_healthy(service, 60)
            yield service
        finally:
            service.stop()


async def _lookups(url: str, count: int) -> list[int]:
    limits = httpx.Limits(max_connections=count)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    # Far longer than a queued request needs; a deadlock ends only at the pool's 30 s timeout
    # with errors, which is what would fail here.
    async with httpx.AsyncClient(timeout=60.0, limits=limits, headers=headers) as client:

        async def one(n: int) -> int:
            response = await client.get(f"{url}/v1/identities/telegram/burst-{n}")
            return response.status_code

        return await asyncio.gather(*(one(n) for n in range(count)))


def test_a_burst_beyond_the_connection_pool_is_answered_not_failed(api: Service) -> None:
    statuses = asyncio.run(_lookups(api.url, 120))

    assert statuses == [200] * 120, f"{sorted(set(statuses))}; see {Path(api.log_path)}"
