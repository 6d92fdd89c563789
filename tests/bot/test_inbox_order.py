"""The inbox's claim: one chat's rows one at a time in arrival order, across claimers.

Two :class:`bot.inbox.Inbox` instances stand for two gateway processes (each with its own
connection pool) on the same database; eight answering tasks each take rows, hold them a random
moment and finish them. On PostgreSQL the claim must hold across them; SQLite serves one process.
"""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from bot.inbox import Inbox, InboxItem

CHATS = 6
PER_CHAT = 8


async def _run(database_url: str, claimers: int) -> tuple[dict[str, list[int]], int]:
    inboxes = [Inbox(database_url, worker=f"w{n}", lease_seconds=30) for n in range(claimers)]
    prefix = uuid.uuid4().hex[:8]
    items = [
        InboxItem(f"{prefix}:{chat}:{n}", "telegram", f"tg:{prefix}{chat}", {"n": n})
        for n in range(PER_CHAT)
        for chat in range(CHATS)
    ]
    assert all(await inboxes[0].accept(items))
    answered: dict[str, list[int]] = {}
    busy: set[str] = set()
    overlaps = 0

    async def answer(inbox: Inbox) -> None:
        nonlocal overlaps
        idle = 0
        while idle < 5:
            item = await inbox.claim()
            if item is None:
                idle += 1
                await asyncio.sleep(0.05)
                continue
            idle = 0
            if item.chat_key in busy:
                overlaps += 1
            busy.add(item.chat_key)
            await asyncio.sleep(random.uniform(0, 0.02))
            answered.setdefault(item.chat_key, []).append(item.payload["n"])
            busy.discard(item.chat_key)
            await inbox.finish(item.id)

    await asyncio.gather(*(answer(inboxes[n % claimers]) for n in range(8)))
    for inbox in inboxes:
        await inbox.aclose()
    return answered, overlaps


@pytest.mark.parametrize(
    ("fixture", "claimers"),
    [("committed_sqlite_url", 1), pytest.param("postgres_url", 2, marks=pytest.mark.postgres)],
)
def test_each_chat_is_answered_one_row_at_a_time_in_arrival_order(
    request: pytest.FixtureRequest, fixture: str, claimers: int
) -> None:
    database_url = str(request.getfixturevalue(fixture))

    answered, overlaps = asyncio.run(_run(database_url, claimers))

    assert overlaps == 0
    assert len(answered) == CHATS
    assert all(order == list(range(PER_CHAT)) for order in answered.values())
