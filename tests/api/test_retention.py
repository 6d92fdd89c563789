"""Retention in the app database: borrowers' words go once their case is long resolved.

Finished rows of the gateway's inbox go too once past the age; unanswered ones stay.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.cases.models import CallOutcome, Case, CaseKind, CaseNote, CaseStatus, LoanCall
from api.cases.officers import record_loan_call
from api.cases.service import open_case
from api.console.models import ConsoleSession, LoginAttempt
from api.core.config import ConsolePolicy, RetentionPolicy
from api.inbox.models import InboxMessage, InboxStatus
from api.ledger.models import ContactEvent
from api.ledger.retention import purge_app_data
from tests.api.factories import aware, make_borrower, make_branch, make_loan, make_officer


def _case(session: Session, words: str, *, at_days_ago: int, resolved: bool) -> Case:
    now = aware(2026, 12, 1)
    branch = make_branch(session)
    borrower = make_borrower(session, branch, officer=make_officer(session, branch))
    at = now - timedelta(days=at_days_ago)
    case = open_case(
        session=session,
        borrower=borrower,
        kind=CaseKind.complaint,
        now=at,
        borrower_words=words,
    ).case
    open_case(
        session=session, borrower=borrower, kind=CaseKind.complaint, now=at, borrower_words=words
    )
    session.add(
        CaseNote(
            case_id=case.id,
            kind=case.kind,
            officer_id=case.assigned_officer_id,
            officer_words=f"officer on {words}",
            created_at=at,
        )
    )
    if resolved:
        case.status = CaseStatus.resolved
        case.resolved_at = at + timedelta(days=1)
    session.flush()
    return case


def test_free_text_of_long_resolved_cases_is_cleared_and_the_rest_kept(session: Session) -> None:
    old = _case(session, "my stall burned, ID 12345678", at_days_ago=120, resolved=True)
    recent = _case(session, "recent words", at_days_ago=20, resolved=True)
    still_open = _case(session, "open words", at_days_ago=120, resolved=False)
    inbox = {
        name: InboxMessage(
            key=f"wa:{name}",
            channel="whatsapp",
            chat_key="wa:254700000009",
            status=status,
            received_at=aware(2026, 12, 1) - timedelta(days=days),
        )
        for name, status, days in (
            ("old-done", InboxStatus.done, 120),
            ("recent-done", InboxStatus.done, 20),
            ("old-pending", InboxStatus.pending, 120),
        )
    }
    session.add_all(inbox.values())
    session.flush()
    result = purge_app_data(
        session=session, now=aware(2026, 12, 1), policy=RetentionPolicy(days=90)
    )
    assert (result.case_texts_cleared, result.note_texts_cleared) == (1, 2)
    assert (result.inbox_present, result.inbox_rows_deleted) == (True, 1)
    kept = set(session.scalars(select(InboxMessage.key)))
    assert kept == {"wa:recent-done", "wa:old-pending"}
    session.expire_all()
    words = {c.id: c.borrower_words for c in session.scalars(select(Case))}
    assert words[old.id] is None
    assert (words[recent.id], words[still_open.id]) == ("recent words", "open words")
    notes = {
        (n.case_id, n.officer_id is not None): n.borrower_words or n.officer_words
        for n in session.scalars(select(CaseNote))
    }
    assert notes == {
        (old.id, False): None,
        (old.id, True): None,
        (recent.id, False): "recent words",
        (recent.id, True): "officer on recent words",
        (still_open.id, False): "open words",
        (still_open.id, True): "officer on open words",
    }
    event = session.scalar(select(ContactEvent).where(ContactEvent.kind == "retention"))
    assert event is not None and event.detail["case_texts_cleared"] == 1


def test_ended_console_sessions_and_old_sign_in_attempts_go(session: Session) -> None:
    now = aware(2026, 12, 1)
    officer = make_officer(session, make_branch(session))
    # (last request, absolute expiry): the policy's idle timeout is 30 minutes.
    for name, last_seen, expires in (
        ("expired", now - timedelta(minutes=1), now - timedelta(seconds=1)),
        ("idle", now - timedelta(minutes=31), now + timedelta(hours=2)),
        ("live", now - timedelta(minutes=5), now + timedelta(hours=2)),
    ):
        session.add(
            ConsoleSession(
                id_hash=f"{name}-{officer.id}",
                officer_id=officer.id,
                csrf_token="token",
                created_at=now - timedelta(hours=3),
                last_seen_at=last_seen,
                expires_at=expires,
            )
        )
    for days in (91, 89):
        session.add(
            LoginAttempt(
                at=now - timedelta(days=days),
                address=f"10.0.0.{days}",
                email="grace@mfi.example",
                officer_id=officer.id,
                result="ok",
            )
        )
    session.flush()

    result = purge_app_data(
        session=session,
        now=now,
        policy=RetentionPolicy(login_attempt_days=90),
        console=ConsolePolicy(session_idle_minutes=30),
    )

    assert (result.console_sessions_deleted, result.login_attempts_deleted) == (2, 1)
    assert list(session.scalars(select(ConsoleSession.id_hash))) == [f"live-{officer.id}"]
    assert list(session.scalars(select(LoginAttempt.address))) == ["10.0.0.89"]
    event = session.scalar(select(ContactEvent).where(ContactEvent.kind == "retention"))
    assert event is not None
    assert (event.detail["console_sessions_deleted"], event.detail["login_attempts_deleted"]) == (
        2,
        1,
    )


def test_officers_words_on_old_calls_outside_a_case_go_and_the_calls_stay(
    session: Session,
) -> None:
    now = aware(2026, 12, 1)
    branch = make_branch(session)
    officer = make_officer(session, branch)
    borrower = make_borrower(session, branch, officer=officer)
    loan = make_loan(session, borrower, schedule=[(date(2026, 8, 1), "1000.00", "100.00", "0")])
    for days in (91, 89):
        record_loan_call(
            session=session,
            loan=loan,
            officer=officer,
            outcome=CallOutcome.no_answer,
            now=now - timedelta(days=days),
            words=f"{days} days ago",
        )

    result = purge_app_data(session=session, now=now, policy=RetentionPolicy(days=90))

    assert result.call_texts_cleared == 1
    session.expire_all()
    calls = session.scalars(select(LoanCall).order_by(LoanCall.created_at))
    assert [(c.call_outcome, c.officer_words) for c in calls] == [
        (CallOutcome.no_answer, None),
        (CallOutcome.no_answer, "89 days ago"),
    ]
    event = session.scalar(select(ContactEvent).where(ContactEvent.kind == "retention"))
    assert event is not None and event.detail["call_texts_cleared"] == 1
