"""Fast row writer for large portfolios: executemany on SQLite, ``COPY`` on PostgreSQL.

The ORM costs tens of microseconds per object; a 100000-borrower portfolio is millions of rows,
so the seed and the importer hand plain tuples to the database driver instead. Values are
prepared once in a form both drivers accept (ints, strings, booleans, ``None``); dates are ISO
strings and timestamps go through :meth:`BulkWriter.ts`, which writes each database's storage
format for ``UTCDateTime`` (naive UTC text on SQLite, an explicit ``+00`` on PostgreSQL).
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol

from sqlalchemy import Index, Table, text
from sqlalchemy.engine import Connection

Row = tuple[Any, ...]


class RowFormat(Protocol):
    """How generated rows write ids and times (the writer's database, or a CSV export)."""

    @property
    def ts_suffix(self) -> str: ...

    def next_id(self, table: str) -> int: ...

    def ts(self, value: datetime) -> str: ...

    def clock(self, value: time) -> str: ...


class Shape:
    """The columns of one model table, from its ``Table.columns``, and rows built by name.

    ``shape.row(id=..., loan_id=..., ...)`` answers a plain tuple in the order of
    :attr:`columns`, which is what :meth:`BulkWriter.write` sends; ``row[shape.index["id"]]``
    reads it back. A column the row leaves out takes the model's scalar default, as an ORM insert
    would, or NULL where it may be null: the schema grows while other parts are written, and a
    new column with a default must not break the seed. Columns in ``database_fills`` (a server
    default such as ``created_at``) are not written at all. Any other column left out, or a name
    the table does not have, is a ``TypeError`` when the row is built, not a database error
    halfway through a load.
    """

    def __init__(self, table: Table, *, database_fills: Collection[str] = ()) -> None:
        unknown = set(database_fills) - set(table.columns.keys())
        if unknown:
            raise ValueError(f"{table.name} has no column {sorted(unknown)}")
        defaults: dict[str, Any] = {}
        columns: list[str] = []
        for column in table.columns:
            if column.name in database_fills:
                continue
            if not column.name.isidentifier() or keyword.iskeyword(column.name):
                raise ValueError(f"{table.name}.{column.name} cannot be a keyword argument")
            columns.append(column.name)
            default = column.default
            # A model default wins over a server default (failed_logins has both).
            if default is not None and default.is_scalar:
                value = default.arg  # type: ignore[attr-defined]
                defaults[column.name] = value.value if isinstance(value, Enum) else _plain(value)
            elif column.server_default is None and column.nullable:
                defaults[column.name] = None
        self.table: str = table.name
        self.columns: tuple[str, ...] = tuple(columns)
        self.index: dict[str, int] = {name: i for i, name in enumerate(columns)}
        self.row: Callable[..., Row] = _row_builder(self.columns, defaults)


def _row_builder(columns: Sequence[str], defaults: dict[str, Any]) -> Callable[..., Row]:
    """``def row(*, id, loan_id, ..., paid_on=None): return (id, loan_id, ..., paid_on)``.

    Generated, as ``collections.namedtuple`` generates its constructor: Python itself then checks
    the names, and a row costs a quarter of what a named tuple's keyword constructor costs (the
    seed builds millions). The names are the schema's columns, checked to be identifiers above.
    """
    params = ", ".join(f"{c}=_defaults[{c!r}]" if c in defaults else c for c in columns)
    source = f"def row(*, {params}):\n    return ({', '.join(columns)},)\n"
    namespace: dict[str, Any] = {"_defaults": defaults}
    exec(source, namespace)  # noqa: S102 - built from column names only
    builder: Callable[..., Row] = namespace["row"]
    return builder


def _plain(value: Any) -> Any:
    """A model default in the form both drivers accept (see the module docstring)."""
    return str(value) if isinstance(value, Decimal) else value


class BulkWriter:
    """Insert rows with explicit primary keys inside the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        if self.dialect not in {"sqlite", "postgresql"}:
            raise ValueError(f"bulk writes support SQLite and PostgreSQL, not {self.dialect}")
        self._written: set[str] = set()
        self._deferred: list[Index] = []

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def next_id(self, table: str) -> int:
        """The first free primary key of ``table`` (ids are assigned here to link rows)."""
        # Table and column names in this module are the schema's own, never user input.
        query = f'SELECT COALESCE(MAX(id), 0) FROM "{table}"'  # noqa: S608
        value = self.conn.execute(text(query)).scalar()
        return int(value or 0) + 1

    @property
    def ts_suffix(self) -> str:
        """What :meth:`ts` appends to ``YYYY-MM-DD HH:MM:SS.ffffff``."""
        return "+00" if self.is_postgres else ""

    def ts(self, value: datetime) -> str:
        """A timezone-aware moment in the storage format of ``UTCDateTime``."""
        u = value.astimezone(UTC)
        return (
            f"{u.year:04d}-{u.month:02d}-{u.day:02d} "
            f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}{self.ts_suffix}"
        )

    def clock(self, value: time) -> str:
        return value.strftime("%H:%M:%S.%f") if not self.is_postgres else value.isoformat()

    def write(self, shape: Shape, rows: Iterable[Row]) -> int:
        """Insert ``rows`` (made by ``shape.row``) and answer how many were written."""
        batch = rows if isinstance(rows, list) else list(rows)
        if not batch:
            return 0
        table, columns = shape.table, shape.columns
        self._written.add(table)
        column_list = ", ".join(f'"{c}"' for c in columns)
        raw = self.conn.connection.driver_connection
        assert raw is not None
        if self.is_postgres:
            # psycopg's C extension formats each row; text values are cast by the server.
            with raw.cursor() as cursor:
                with cursor.copy(f'COPY "{table}" ({column_list}) FROM STDIN') as copy:
                    for row in batch:
                        copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in columns)
            cursor = raw.cursor()
            try:
                insert = f'INSERT INTO "{table}" ({column_list}) VALUES ({marks})'  # noqa: S608
                cursor.executemany(insert, batch)
            finally:
                cursor.close()
        return len(batch)

    def defer_indexes(self, tables: Sequence[str]) -> None:
        """Drop the plain (non-unique) indexes of ``tables`` until :meth:`finish` rebuilds them.

        Building an index once over millions of rows is several times faster than updating it
        row by row. Unique indexes stay: they guard the data while it is written. Both
        databases roll the drop back with the transaction if the load fails.
        """
        from sqlalchemy import inspect

        from api.models import Base

        inspector = inspect(self.conn)
        for table in tables:
            present = {index["name"] for index in inspector.get_indexes(table)}
            for index in Base.metadata.tables[table].indexes:
                if not index.unique and index.name in present:
                    index.drop(self.conn)
                    self._deferred.append(index)

    def finish(self) -> None:
        """Rebuild deferred indexes; move PostgreSQL id sequences past the ids written here."""
        while self._deferred:
            self._deferred.pop().create(self.conn)
        if not self.is_postgres:
            return
        for table in sorted(self._written):
            query = (
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "  # noqa: S608
                f'(SELECT COALESCE(MAX(id), 1) FROM "{table}"))'
            )
            self.conn.execute(text(query))
