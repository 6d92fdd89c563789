"""Helpers shared by the seed and import tests."""

from __future__ import annotations

from typing import Any

from api.core.db import build_engine
from api.models import Base

PEPPER = "test-pepper"


def dump(url: str, *, skip: tuple[str, ...] = ()) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, ordered by primary key, for comparing whole databases."""
    engine = build_engine(url)
    out: dict[str, list[tuple[Any, ...]]] = {}
    try:
        with engine.connect() as conn:
            for name, table in Base.metadata.tables.items():
                columns = [c for c in table.columns if c.name not in skip]
                query = table.select().with_only_columns(*columns)
                rows = conn.execute(query.order_by(*table.primary_key.columns))
                out[name] = [tuple(r) for r in rows]
    finally:
        engine.dispose()
    return out
