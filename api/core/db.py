"""Engine, session factory and the declarative base.

The API is synchronous SQLAlchemy 2: FastAPI runs sync routes in its thread pool, and the
notifier's workers and the CLI share the same session code. SQLite is the embedded default,
PostgreSQL (psycopg 3) the production database.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from sqlalchemy import ColumnElement, Integer, MetaData, any_, bindparam, case, event, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Engine, create_engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.elements import Grouping

from api.core.config import get_settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite starts transactions lazily on its own and would turn the first SAVEPOINT into the
    # real transaction (so releasing it commits). Take control: SQLAlchemy emits BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def _sqlite_begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def build_engine(url: str, *, sqlite_immediate: bool = False, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets its parent folder, foreign keys and WAL.

    ``sqlite_immediate`` takes SQLite's write lock when a transaction begins, so that a
    read-then-write transaction waits for another writer (``busy_timeout``) instead of failing
    with "database is locked" when it upgrades.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(
            engine, "begin", _sqlite_begin_immediate if sqlite_immediate else _sqlite_begin
        )
        return engine
    # A connection the server dropped (restart, terminated backend) is replaced at checkout,
    # and a server that does not answer fails the connect after 5 s instead of the OS's minutes.
    kwargs.setdefault("pool_pre_ping", True)
    kwargs["connect_args"] = {"connect_timeout": 5, **kwargs.get("connect_args", {})}
    return create_engine(url, **kwargs)


@lru_cache
def get_engine() -> Engine:
    # On SQLite the gateways (durable inbox) and the notifier write to the same file from other
    # processes: a deferred transaction that reads, then writes, fails at once with "database is
    # locked" when another process wrote in between (the busy timeout cannot help it). Taking the
    # write lock at BEGIN makes it wait its turn instead. PostgreSQL is unaffected.
    settings = get_settings()
    pool: dict[str, Any] = {}
    if make_url(settings.database_url).database not in (None, "", ":memory:"):
        pool = {
            "pool_size": settings.database_pool_size,
            "max_overflow": settings.database_max_overflow,
        }
    return build_engine(settings.database_url, sqlite_immediate=True, **pool)


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction for a use case outside a request (CLI, workers): commit or roll back."""
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_postgres(session_or_engine: Session | Engine) -> bool:
    bind = (
        session_or_engine.get_bind()
        if isinstance(session_or_engine, Session)
        else session_or_engine
    )
    return bind.dialect.name == "postgresql"


def by_id(
    id_column: Any, values: Mapping[int, Any], value_type: Any, session: Session
) -> ColumnElement[Any]:
    """``values[id_column]``, for an UPDATE that sets a different value on each row.

    On PostgreSQL two array parameters, so that the statement has one shape (compiled and
    prepared once) whatever the number of rows; building and compiling a ``CASE`` of a hundred
    rows cost more than the rest of the update. A ``CASE`` elsewhere.
    """
    if session.get_bind().dialect.name == "postgresql":
        ids = bindparam(None, list(values), ARRAY(Integer))
        items = Grouping(bindparam(None, list(values.values()), ARRAY(value_type)))
        return items[func.array_position(ids, id_column)]
    return case(dict(values), value=id_column)


def in_ids(column: Any, ids: Sequence[int], session: Session) -> ColumnElement[bool]:
    """``column IN ids`` as one statement whatever the number of ids: ``= ANY(array)`` on
    PostgreSQL, so that the driver and the server reuse its prepared plan; ``IN`` elsewhere."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(ColumnElement[bool], column == any_(bindparam(None, list(ids), ARRAY(Integer))))
    return cast(ColumnElement[bool], column.in_(ids))
