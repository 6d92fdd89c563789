"""Fast row writer for large portfolios: executemany on SQLite, ``COPY`` on PostgreSQL.

The ORM costs tens of microseconds per object; a 100000-borrower portfolio is millions of rows,
so the seed and the importer hand plain tuples to the database driver instead. Values are
prepared once in a form both drivers accept (ints, strings, booleans, ``None``); dates are ISO
strings and timestamps go through :meth:`BulkWriter.ts`, which writes each database's storage
format for ``UTCDateTime`` (naive UTC text on SQLite, an explicit ``+00`` on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol

from sqlalchemy import Index, text
from sqlalchemy.engine import Connection

Row = Sequence[Any]


class RowFormat(Protocol):
    """How generated rows write ids and times (the writer's database, or a CSV export)."""

    @property
    def ts_suffix(self) -> str: ...

    def next_id(self, table: str) -> int: ...

    def ts(self, value: datetime) -> str: ...

    def clock(self, value: time) -> str: ...


class BulkWriter:
    """Insert rows with explicit primary keys inside the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        if self.dialect not in {"sqlite", "postgresql"}:
            raise ValueError(f"bulk writes support SQLite and PostgreSQL, not {self.dialect}")
        self._written: set[str] = set()
        self._deferred: list[Index] = []
        self._extras: dict[
            tuple[str, tuple[str, ...]], tuple[tuple[str, ...], tuple[Any, ...]]
        ] = {}

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

    def _defaults(
        self, table: str, columns: Sequence[str]
    ) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        """Required columns the caller did not name, filled with the model's scalar default.

        The schema grows while other parts are written; a new column with a default must not
        break the seed.
        """
        key = (table, tuple(columns))
        if key not in self._extras:
            from api.models import Base

            names: list[str] = []
            values: list[Any] = []
            for column in Base.metadata.tables[table].columns:
                if column.name in columns or column.nullable or column.server_default is not None:
                    continue
                default = column.default
                if default is None or not default.is_scalar:
                    continue
                value = default.arg  # type: ignore[attr-defined]
                names.append(column.name)
                if isinstance(value, Enum):
                    value = value.value
                elif isinstance(value, Decimal):
                    value = str(value)
                values.append(value)
            self._extras[key] = (tuple(names), tuple(values))
        return self._extras[key]

    def write(self, table: str, columns: Sequence[str], rows: Iterable[Row]) -> int:
        """Insert ``rows`` (tuples in ``columns`` order) and answer how many were written."""
        batch = rows if isinstance(rows, list) else list(rows)
        if not batch:
            return 0
        extra_names, extra_values = self._defaults(table, columns)
        if extra_names:
            columns = (*columns, *extra_names)
            batch = [(*row, *extra_values) for row in batch]
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
