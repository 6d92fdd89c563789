"""A large outbox backlog and the query plan of the claim over it (matrix row L-4).

Shared by ``python -m bench.notify`` (one million rows, its own assertion) and
``tests/reliability/conduct_and_load/test_backlog.py`` (a smaller backlog in CI).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from notifier.outbox import claim

PARTIAL_INDEX = "ix_outbox_message_due"
_COLUMNS = (
    "business_key, purpose, step, is_collection, channel, recipient, locale, "
    "message_key, args, buttons, status, send_at, attempts, sent_at"
)


def load_backlog(url: str, backlog: int, runnable: int, now: datetime) -> None:
    """``backlog`` outbox rows by ``COPY``: ``runnable`` of them due by ``now``, a third of the
    rest pending for the next 30 days, the others sent in the last 60; then ``ANALYZE``."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY outbox_message ({_COLUMNS}) FROM STDIN") as copy:
            for n in range(backlog):
                sent_at = None
                if n < runnable:
                    status, send_at = "pending", now - timedelta(seconds=n % 3600)
                elif n % 3 == 0:
                    status, send_at = "pending", now + timedelta(days=1 + n % 30)
                else:
                    status = "sent"
                    send_at = sent_at = now - timedelta(days=n % 60)
                copy.write_row(
                    (
                        f"bench:{n}",
                        "reminder",
                        "installment-3",
                        True,
                        "telegram",
                        str(900000000 + n),
                        "en",
                        "notify.reminder.upcoming",
                        "{}",
                        "[]",
                        status,
                        send_at,
                        0,
                        sent_at,
                    )
                )
        conn.commit()
        cur.execute("ANALYZE outbox_message")
        conn.commit()


def claim_plans(
    engine: Engine, *, now: datetime | None = None, limit: int = 100, runs: int = 12
) -> dict[str, Any]:
    """The plans PostgreSQL makes for the claim statement as ``claim()`` sends it, after
    ``runs`` claims of ``limit`` rows on one connection, each committed as a worker's are.

    - ``custom``: planned with its parameters, as the first executions are;
    - ``generic``: the plan a prepared statement may keep instead. psycopg prepares a statement
      run five times (and forgets them all on a rollback), and after five more executions the
      server may switch to a generic plan, which cannot prove a partial index's predicate from
      parameters; ``generic_plans`` counts how often it did.
    """
    at = now or datetime.now(UTC)
    seen: list[tuple[str, dict[str, Any]]] = []

    def capture(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if statement.lstrip().upper().startswith("UPDATE OUTBOX_MESSAGE"):
            seen.append((statement, dict(parameters)))

    with engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", capture)
        try:
            for n in range(runs):
                with Session(bind=conn) as session, session.begin():
                    claim(session, now=at, worker_id=f"explain-{n}", limit=limit, lease_seconds=30)
        finally:
            event.remove(conn, "before_cursor_execute", capture)
        assert len(seen) == runs, f"{runs} claims sent {len(seen)} updates"
        statement, parameters = seen[0]
        prepared_count, generic_plans = conn.exec_driver_sql(
            "SELECT count(*), coalesce(sum(generic_plans), 0) FROM pg_prepared_statements "
            "WHERE statement ILIKE 'UPDATE outbox_message%%'"
        ).one()
        custom = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
        # The same statement prepared by hand (%(name)s placeholders become $1, $2 ...) and
        # explained as its generic plan. EXECUTE takes no bound parameters: a client-side
        # cursor writes them in as literals.
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            names.append(match.group(1))
            return f"${len(names)}"

        prepared = re.sub(r"%\((\w+)\)s", number, statement)
        raw = conn.connection.dbapi_connection
        assert isinstance(raw, psycopg.Connection)
        with psycopg.ClientCursor(raw) as cur:
            cur.execute("PREPARE kopa_claim_plan AS " + prepared)
            cur.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            placeholders = ", ".join(f"%({name})s" for name in names)
            cur.execute(f"EXPLAIN EXECUTE kopa_claim_plan({placeholders})", parameters)
            generic = "\n".join(r[0] for r in cur.fetchall())
            cur.execute("DEALLOCATE kopa_claim_plan")
        conn.rollback()
    return {
        "custom": custom,
        "generic": generic,
        "prepared": int(prepared_count),
        "generic_plans": int(generic_plans),
    }


def plan_problems(plan: str) -> list[str]:
    """What makes a claim plan unfit for a large backlog: a sequential scan of the outbox, or
    no use of the partial index on due rows."""
    problems = []
    if re.search(r"Seq Scan on outbox_message", plan):
        problems.append("sequential scan of outbox_message")
    if PARTIAL_INDEX not in plan:
        problems.append(f"{PARTIAL_INDEX} not used")
    return problems
