"""Retention of what borrowers wrote, in the app database (``kopa retention run``).

Kept: every decision (the contact ledger, which never stores message text), every case, promise
and payment. Removed past the policy age: the free text borrowers typed on cases resolved that
long ago (their words, the details they gave, the notes of later requests, and what officers
wrote about them on those cases), what officers wrote about their calls outside any case
(``loan_call``) made that long ago, and the finished rows
of the gateway's inbox (``inbox_message``, when that table exists). Of the officers' console:
its ended sessions (expired or idle), and its sign-in attempts past ``login_attempt_days``. The
run itself is a ledger event, with its counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import MetaData, Table, delete, inspect, literal, select, update
from sqlalchemy.orm import Session

from api.cases.models import Case, CaseNote, LoanCall
from api.console import auth
from api.core.config import ConsolePolicy, RetentionPolicy
from api.core.types import UTCDateTime
from api.ledger import service as ledger

INBOX_TABLE = "inbox_message"
INBOX_FINISHED = ("done", "dead")


@dataclass
class AppDataPurge:
    case_texts_cleared: int = 0
    note_texts_cleared: int = 0
    call_texts_cleared: int = 0
    inbox_rows_deleted: int = 0
    inbox_present: bool = False
    console_sessions_deleted: int = 0
    login_attempts_deleted: int = 0


def purge_app_data(
    *,
    session: Session,
    now: datetime,
    policy: RetentionPolicy,
    console: ConsolePolicy | None = None,
) -> AppDataPurge:
    """Clear borrowers' free text past the policy; one transaction, committed by the caller."""
    cutoff = now - timedelta(days=policy.days)
    result = AppDataPurge()
    old_cases = select(Case.id).where(Case.resolved_at.is_not(None), Case.resolved_at < cutoff)
    cleared = session.execute(
        update(Case)
        .where(
            Case.id.in_(old_cases),
            (Case.borrower_words.is_not(None)) | (Case.details.is_not(None)),
        )
        .values(borrower_words=None, details=None)
        .execution_options(synchronize_session=False)
    )
    result.case_texts_cleared = int(cleared.rowcount or 0)  # type: ignore[attr-defined]
    notes = session.execute(
        update(CaseNote)
        .where(
            CaseNote.case_id.in_(old_cases),
            CaseNote.created_at < cutoff,
            (CaseNote.borrower_words.is_not(None))
            | (CaseNote.details.is_not(None))
            | (CaseNote.officer_words.is_not(None)),
        )
        .values(borrower_words=None, details=None, officer_words=None)
        .execution_options(synchronize_session=False)
    )
    result.note_texts_cleared = int(notes.rowcount or 0)  # type: ignore[attr-defined]
    calls = session.execute(
        update(LoanCall)
        .where(LoanCall.created_at < cutoff, LoanCall.officer_words.is_not(None))
        .values(officer_words=None)
        .execution_options(synchronize_session=False)
    )
    result.call_texts_cleared = int(calls.rowcount or 0)  # type: ignore[attr-defined]

    connection = session.connection()
    # The gateway's inbox is its own table: handled when present, by name.
    if inspect(connection).has_table(INBOX_TABLE):
        result.inbox_present = True
        inbox = Table(INBOX_TABLE, MetaData(), autoload_with=connection)
        deleted = session.execute(
            delete(inbox).where(
                inbox.c.status.in_(INBOX_FINISHED),
                # Bound as the app's own times are stored (UTC, naive on SQLite).
                inbox.c.received_at < literal(cutoff, UTCDateTime()),
            )
        )
        result.inbox_rows_deleted = int(deleted.rowcount or 0)  # type: ignore[attr-defined]
    result.console_sessions_deleted, result.login_attempts_deleted = auth.forget_old(
        session=session,
        now=now,
        idle_before=now - timedelta(minutes=(console or ConsolePolicy()).session_idle_minutes),
        attempts_before=now - timedelta(days=policy.login_attempt_days),
    )
    ledger.record(
        session=session,
        at=now,
        direction="internal",
        kind="retention",
        decision="purged",
        rule=f"retention_{policy.days}d",
        detail={k: v for k, v in asdict(result).items() if k != "inbox_present"},
    )
    return result
