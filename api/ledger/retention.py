"""Retention of what borrowers wrote, in the app database (``kopa retention run``).

Kept: every decision (the contact ledger, which never stores message text), every case, promise
and payment. Removed past the policy age: the free text borrowers typed on cases resolved that
long ago (their words, the details they gave, the notes of later requests, and what officers
wrote about them on those cases) and the finished rows
of the gateway's inbox (``inbox_message``, when that table exists). The console's sessions go
once they have ended (past their absolute expiry or idle timeout: nobody can use them again),
and its sign-in attempts once older than the policy age (the lockout and the per-address limit
only read the last minutes). The run itself is a ledger event, with its counts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import MetaData, Table, delete, inspect, literal, select, update
from sqlalchemy.orm import Session

from api.cases.models import Case, CaseNote
from api.console.models import ConsoleSession, LoginAttempt
from api.core.config import ConsolePolicy, RetentionPolicy, get_settings
from api.core.types import UTCDateTime
from api.ledger import service as ledger

INBOX_TABLE = "inbox_message"
INBOX_FINISHED = ("done", "dead")


@dataclass
class AppDataPurge:
    case_texts_cleared: int = 0
    note_texts_cleared: int = 0
    inbox_rows_deleted: int = 0
    console_sessions_deleted: int = 0
    login_attempts_deleted: int = 0
    inbox_present: bool = False


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
    _purge_console(session, now, cutoff, console or get_settings().console, result)
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


def _purge_console(
    session: Session, now: datetime, cutoff: datetime, console: ConsolePolicy, result: AppDataPurge
) -> None:
    """Ended console sessions, and sign-in attempts older than ``cutoff``."""
    idle_since = now - timedelta(minutes=console.session_idle_minutes)
    ended = session.execute(
        delete(ConsoleSession)
        .where((ConsoleSession.expires_at <= now) | (ConsoleSession.last_seen_at <= idle_since))
        .execution_options(synchronize_session=False)
    )
    result.console_sessions_deleted = int(ended.rowcount or 0)  # type: ignore[attr-defined]
    attempts = session.execute(
        delete(LoginAttempt)
        .where(LoginAttempt.at < cutoff)
        .execution_options(synchronize_session=False)
    )
    result.login_attempts_deleted = int(attempts.rowcount or 0)  # type: ignore[attr-defined]
