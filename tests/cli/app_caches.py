"""The cached settings and engine, cleared when a test points KOPA_DATABASE_URL elsewhere."""

from __future__ import annotations

from api.core import db
from api.core.config import get_settings


def clear_app_caches() -> None:
    if db.get_engine.cache_info().currsize:
        db.get_engine().dispose()
    for cached in (get_settings, db.get_engine, db.get_sessionmaker):
        cached.cache_clear()
