"""Request-scoped dependencies: one session per request, committed by the route that owns it.

The clock is a dependency too, so tests can stand at any moment (idle expiry, SLA, lockouts)
without sleeping.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

import anyio
from fastapi import Depends
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.core.config import Settings, get_settings
from api.core.db import get_sessionmaker
from api.core.types import utcnow

# Why requests queue for a session here (fastapi/fastapi#3205): a request's sync dependencies
# and route run in separate worker threads, and its session keeps its connection between them.
# With more requests than connections, every worker thread (40) can end up waiting for a
# connection while every connection is held by a request waiting for a thread: the API stops
# until the pool's 30 s timeout fails them all (seen under a reply burst as silent minutes and
# "try again" in chat). Capping the requests that hold a session at the pool's size keeps a
# thread's checkout from ever waiting on a request that needs a thread; the rest wait here,
# on the event loop, without a thread.
_session_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _session_gate() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    gate = _session_gates.get(loop)
    if gate is None:
        gate = _session_gates[loop] = asyncio.Semaphore(get_settings().database_connections)
    return gate


async def get_session() -> AsyncIterator[Session]:
    async with _session_gate():
        session = get_sessionmaker()()
        try:
            yield session
        finally:
            # Closing rolls back what the route did not commit and returns the connection.
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(session.close)


def get_now() -> datetime:
    return utcnow()


SessionDep = Annotated[Session, Depends(get_session)]
NowDep = Annotated[datetime, Depends(get_now)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
