"""Retention in the app database: borrowers' words go once their case is long resolved.

The gateway's inbox table is handled by name when it exists; without it the job runs cleanly.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api.cases.models import Case, CaseKind, CaseNote, CaseStatus
from api.cases.service import open_case
from api.core.config import RetentionPolicy
from api.ledger.models import ContactEvent
from api.ledger.retention import purge_app_data
from tests.api.factories import aware, make_borrower, make_branch, make_officer


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
    if resolved:
        case.status = CaseStatus.resolved
        case.resolved_at = at + timedelta(days=1)
    session.flush()
    return case


def test_free_text_of_long_resolved_cases_is_cleared_and_the_rest_kept(session: Session) -> None:
    old = _case(session, "my stall burned, ID 12345678", at_days_ago=120, resolved=True)
    recent = _case(session, "recent words", at_days_ago=20, resolved=True)
    still_open = _case(session, "open words", at_days_ago=120, resolved=False)
    result = purge_app_data(
        session=session, now=aware(2026, 12, 1), policy=RetentionPolicy(days=90)
    )
    assert (result.case_texts_cleared, result.note_texts_cleared) == (1, 1)
    assert result.inbox_present is False  # no inbox table on this branch's schema: skipped
    session.expire_all()
    words = {c.id: c.borrower_words for c in session.scalars(select(Case))}
    assert words[old.id] is None
    assert (words[recent.id], words[still_open.id]) == ("recent words", "open words")
    notes = {n.case_id: n.borrower_words for n in session.scalars(select(CaseNote))}
    assert notes == {old.id: None, recent.id: "recent words", still_open.id: "open words"}
    event = session.scalar(select(ContactEvent).where(ContactEvent.kind == "retention"))
    assert event is not None and event.detail["case_texts_cleared"] == 1


def test_finished_inbox_rows_past_the_age_are_deleted_when_the_table_exists(
    session: Session,
) -> None:
    session.execute(
        text(
            "CREATE TABLE inbox_message (id INTEGER PRIMARY KEY, key VARCHAR(200), "
            "status VARCHAR(12), payload TEXT, received_at TIMESTAMP WITH TIME ZONE)"
            if session.get_bind().dialect.name == "postgresql"
            else "CREATE TABLE inbox_message (id INTEGER PRIMARY KEY, key VARCHAR(200), "
            "status VARCHAR(12), payload TEXT, received_at DATETIME)"
        )
    )
    rows = [
        (1, "done", 100),
        (2, "dead", 100),
        (3, "pending", 100),  # never answered: kept for the gateway
        (4, "done", 10),
    ]
    for row_id, status, days in rows:
        session.execute(
            text("INSERT INTO inbox_message (id, key, status, received_at) VALUES (:i,:k,:s,:r)"),
            {
                "i": row_id,
                "k": f"tg:{row_id}",
                "s": status,
                "r": (aware(2026, 12, 1) - timedelta(days=days)).replace(tzinfo=None),
            },
        )
    result = purge_app_data(
        session=session, now=aware(2026, 12, 1), policy=RetentionPolicy(days=90)
    )
    assert (result.inbox_present, result.inbox_rows_deleted) == (True, 2)
    left = session.scalars(text("SELECT id FROM inbox_message ORDER BY id")).all()
    assert left == [3, 4]
