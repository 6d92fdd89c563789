"""Request-scoped dependencies: one session per request, committed by the route that owns it.

The clock is a dependency too, so tests can stand at any moment (idle expiry, SLA, lockouts)
without sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from api.core.config import Settings, get_settings
from api.core.db import get_sessionmaker
from api.core.types import utcnow


def get_session() -> Iterator[Session]:
    session = get_sessionmaker()()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_now() -> datetime:
    return utcnow()


SessionDep = Annotated[Session, Depends(get_session)]
NowDep = Annotated[datetime, Depends(get_now)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
