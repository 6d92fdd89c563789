"""The gateway's Rasa pool: a conversation sticks to one replica and moves only when it is down.

The replicas here are small HTTP servers answering Rasa's REST channel shape (the real Rasa
replicas on a shared tracker store are in ``tests/reliability/test_replicas.py``): what is
tested is the routing, over real sockets.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from bot.fakes.runner import ServerThread
from bot.rasa_client import RasaUnavailable
from bot.rasa_pool import RasaPool, rank, rasa_urls, resolve_replicas


def _replica(seen: list[str], delay: float = 0.0) -> FastAPI:
    app = FastAPI()

    @app.post("/webhooks/rest/webhook")
    async def webhook(request: Request) -> list[dict[str, Any]]:
        body = await request.json()
        seen.append(body["sender"])
        await asyncio.sleep(delay)
        return [{"recipient_id": body["sender"], "text": "ok"}]

    return app


@pytest.fixture
def replicas() -> Iterator[tuple[list[str], list[list[str]]]]:
    seen: list[list[str]] = [[], [], []]
    servers = [ServerThread(_replica(s)) for s in seen]
    for server in servers:
        server.start()
    try:
        yield [server.url for server in servers], seen
    finally:
        for server in servers:
            server.stop()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_the_setting_names_one_or_several_replicas() -> None:
    assert rasa_urls("http://a:5005") == ["http://a:5005"]
    assert rasa_urls(" http://a:5005/, http://b:5005 ") == ["http://a:5005", "http://b:5005"]
    with pytest.raises(ValueError):
        rasa_urls(" , ")


def test_a_replica_going_away_moves_only_its_own_conversations() -> None:
    urls = ["http://r1", "http://r2", "http://r3"]
    senders = [f"wa:{n}" for n in range(600)]
    first = {s: rank(s, urls)[0] for s in senders}
    assert {url: list(first.values()).count(url) for url in urls} == pytest.approx(
        {url: 200 for url in urls}, abs=60
    )
    without_r2 = {s: rank(s, ["http://r1", "http://r3"])[0] for s in senders}
    moved = [s for s in senders if first[s] != without_r2[s]]
    assert moved and all(first[s] == "http://r2" for s in moved)


async def test_each_conversation_sticks_to_its_replica(
    replicas: tuple[list[str], list[list[str]]],
) -> None:
    urls, seen = replicas
    pool = RasaPool(urls)
    try:
        for turn in range(3):
            for n in range(30):
                await pool.send(f"tg:{n}", f"turn {turn}", {})
    finally:
        await pool.aclose()
    for url, got in zip(urls, seen, strict=True):
        senders = set(got)
        assert senders, "every replica takes some conversations"
        assert all(rank(s, urls)[0] == url for s in senders)
        assert all(got.count(s) == 3 for s in senders)


async def test_a_dead_replica_is_left_at_once_and_tried_again_after_a_while(
    replicas: tuple[list[str], list[list[str]]],
) -> None:
    urls, seen = replicas
    dead = _closed_port_url()
    now = [0.0]
    pool = RasaPool([*urls, dead], retry_after=5.0, clock=lambda: now[0])
    orphan = next(f"wa:{n}" for n in range(1000) if rank(f"wa:{n}", [*urls, dead])[0] == dead)
    try:
        assert await pool.send(orphan, "hello", {}) == [{"recipient_id": orphan, "text": "ok"}]
        heir = rank(orphan, urls)[0]
        assert seen[urls.index(heir)] == [orphan]  # no turn lost: the next replica took it
        assert pool.route(orphan)[-1] == dead  # out of rotation
        now[0] = 6.0
        assert pool.route(orphan)[0] == dead  # back in rotation: tried first again
    finally:
        await pool.aclose()


async def test_a_slow_replica_is_not_left_mid_turn() -> None:
    """A timeout may mean the turn is still running: sending it elsewhere would run it twice."""
    slow_seen: list[str] = []
    other_seen: list[str] = []
    with (
        ServerThread(_replica(slow_seen, delay=2.0)) as slow,
        ServerThread(_replica(other_seen)) as other,
    ):
        urls = [slow.url, other.url]
        sender = next(f"tg:{n}" for n in range(1000) if rank(f"tg:{n}", urls)[0] == slow.url)
        pool = RasaPool(urls, timeout=httpx.Timeout(0.5, connect=1.0))
        try:
            with pytest.raises(RasaUnavailable):
                await pool.send(sender, "hello", {})
        finally:
            await pool.aclose()
    assert slow_seen == [sender] and other_seen == []


async def test_a_busy_replica_gets_a_few_turns_at_a_time_and_the_rest_wait_their_turn() -> None:
    """Rasa works a turn on the CPU: the gateway keeps ``concurrency`` turns in flight at a
    replica and queues the others, all answered; a turn that cannot get a slot in time hears
    "try again" rather than waiting forever."""
    in_flight = [0]
    most = [0]
    app = FastAPI()

    @app.post("/webhooks/rest/webhook")
    async def webhook(request: Request) -> list[dict[str, Any]]:
        body = await request.json()
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        await asyncio.sleep(0.2)
        in_flight[0] -= 1
        return [{"recipient_id": body["sender"], "text": "ok"}]

    with ServerThread(app) as server:
        pool = RasaPool([server.url], concurrency=2)
        try:
            answers = await asyncio.gather(*(pool.send(f"tg:{n}", "hi", {}) for n in range(8)))
        finally:
            await pool.aclose()
        assert len(answers) == 8 and most[0] == 2

        impatient = RasaPool([server.url], concurrency=1, queue_seconds=0.05)
        try:
            outcomes = await asyncio.gather(
                *(impatient.send(f"tg:{n}", "hi", {}) for n in range(3)), return_exceptions=True
            )
        finally:
            await impatient.aclose()
        assert sum(isinstance(o, RasaUnavailable) for o in outcomes) == 2


async def test_replicas_named_by_dns_join_and_leave_and_only_their_conversations_move() -> None:
    """With discovery (Compose ``deploy.replicas``, a Kubernetes headless Service) the pool
    looks the replicas up again every few seconds: scaling from 2 to 3 moves only the
    conversations the new replica ranks first for; a DNS failure keeps the ones known."""
    now = [0.0]
    named = [["http://10.0.0.1:5005", "http://10.0.0.2:5005"]]
    pool = RasaPool(
        ["http://rasa:5005"], clock=lambda: now[0], discover=lambda: named[0], rediscover_seconds=10
    )
    try:
        senders = [f"wa:{n}" for n in range(300)]
        before = {s: pool.route(s)[0] for s in senders}
        assert set(before.values()) == set(named[0])
        named[0] = [*named[0], "http://10.0.0.3:5005"]
        assert {pool.route(s)[0] for s in senders} == set(before.values())  # not yet looked up
        now[0] = 11.0
        after = {s: pool.route(s)[0] for s in senders}
        moved = [s for s in senders if after[s] != before[s]]
        assert moved and all(after[s] == "http://10.0.0.3:5005" for s in moved)
        named[0] = []
        now[0] = 22.0
        assert {pool.route(s)[0] for s in senders} == set(after.values())
    finally:
        await pool.aclose()


def test_a_name_resolves_to_every_replica_address() -> None:
    assert "http://127.0.0.1:5005" in resolve_replicas("http://localhost:5005")
    assert resolve_replicas("http://no-such-host.invalid:5005") == []
