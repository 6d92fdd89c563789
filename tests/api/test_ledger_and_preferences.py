"""The contact ledger only grows; consent and language take effect at once and are logged."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower, Channel, Consent
from api.ledger import service as ledger
from api.ledger.models import ContactEvent, LedgerIsAppendOnly
from tests.api.conftest import Api
from tests.api.factories import (
    DEFAULT_DOB,
    aware,
    make_borrower,
    make_branch,
    make_verified_identity,
)


def _event(session: Session) -> ContactEvent:
    event = ledger.record(
        session=session,
        at=aware(2026, 12, 1),
        direction="outbound",
        kind="reminder",
        decision="suppressed",
        rule="quiet_hours",
    )
    session.flush()
    return event


def test_the_orm_refuses_to_change_or_remove_a_ledger_row(session: Session) -> None:
    event = _event(session)
    event.decision = "sent"
    with pytest.raises(LedgerIsAppendOnly):
        session.flush()
    session.rollback()

    event = _event(session)
    session.delete(event)
    with pytest.raises(LedgerIsAppendOnly):
        session.flush()
    session.rollback()

    _event(session)
    with pytest.raises(LedgerIsAppendOnly):
        session.execute(update(ContactEvent).values(decision="sent"))
    with pytest.raises(LedgerIsAppendOnly):
        session.execute(delete(ContactEvent))


def test_the_database_refuses_a_raw_update_or_delete(session: Session) -> None:
    event = _event(session)
    for statement in (
        "UPDATE contact_event SET decision = 'sent' WHERE id = :id",
        "DELETE FROM contact_event WHERE id = :id",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            with session.begin_nested():
                session.execute(text(statement), {"id": event.id})
    session.expire_all()
    assert session.get_one(ContactEvent, event.id).decision == "suppressed"


def test_many_events_are_recorded_at_once_with_every_value_kept(session: Session) -> None:
    """On PostgreSQL ``record_many`` copies rows in; they must read back as an insert would
    write them: the instant in UTC, detail as JSON, absent values as NULL, after events the
    session added before."""
    borrower = make_borrower(session, make_branch(session))
    first = _event(session)
    east_africa = aware(2026, 12, 1, 9).astimezone(timezone(timedelta(hours=3)))
    ledger.record_many(
        session,
        [
            ledger.event_values(
                at=east_africa,
                direction="outbound",
                kind="reminder",
                decision="sent",
                rule="cap_1d",
                borrower_id=borrower.id,
                channel="telegram",
                message_key="reminder.due_today",
                external_message_id="4711",
                detail={"step": "due", "note": "tab\tand ünïcode"},
            ),
            ledger.event_values(at=east_africa, direction="internal", kind="case", decision="x"),
        ],
    )
    session.expire_all()
    rows = session.scalars(
        select(ContactEvent).where(ContactEvent.id > first.id).order_by(ContactEvent.id)
    ).all()
    assert [(row.decision, row.at) for row in rows] == [
        ("sent", aware(2026, 12, 1, 9)),
        ("x", aware(2026, 12, 1, 9)),
    ]
    sent, other = rows
    assert (sent.borrower_id, sent.rule, sent.external_message_id) == (
        borrower.id,
        "cap_1d",
        "4711",
    )
    assert sent.detail == {"step": "due", "note": "tab\tand ünïcode"}
    assert (other.borrower_id, other.rule, other.detail) == (None, None, {})


def test_the_ledger_never_stores_message_text(session: Session) -> None:
    with pytest.raises(ValueError, match="never stores message text"):
        ledger.record(
            session=session,
            at=aware(2026, 12, 1),
            direction="inbound",
            kind="chat",
            decision="answered",
            detail={"text": "my balance please"},
        )


def test_opt_out_before_verification_applies_to_the_borrower_once_bound(
    api: Api, session: Session
) -> None:
    branch = make_branch(session)
    borrower = make_borrower(session, branch, language="en")
    base = "/v1/identities/whatsapp/254700111222"
    out = api.put(f"{base}/consent", {"opted_in": False})
    assert out.json() == {"channel": "whatsapp", "opted_in": False}
    assert api.put(f"{base}/language", {"locale": "sw-KE"}).json() == {"locale": "sw"}
    assert api.put(f"{base}/language", {"locale": "de"}).json()["code"] == "unsupported_locale"
    assert api.get(base).json()["locale"] == "sw"

    factor = api.post(f"{base}/verification/start", {"phone": borrower.phone_e164}).json()
    value = DEFAULT_DOB.isoformat() if factor["factor"] == "dob" else "4821"
    done = api.post(f"{base}/verification/complete", {"factor": factor["factor"], "value": value})
    assert done.json() == {"status": "verified", "locale": "sw", "timezone": "Africa/Nairobi"}

    session.expire_all()
    consent = session.scalar(select(Consent).where(Consent.borrower_id == borrower.id))
    assert consent is not None
    assert (consent.channel, consent.opted_in) == (Channel.whatsapp, False)
    assert session.get_one(Borrower, borrower.id).preferred_language == "sw"
    decisions = list(
        session.scalars(
            select(ContactEvent.decision)
            .where(ContactEvent.kind.in_(["consent", "language"]))
            .order_by(ContactEvent.id)
        )
    )
    assert decisions == ["opted_out", "changed"]


def test_opt_in_and_out_of_a_verified_chat_change_the_borrowers_consent_at_once(
    api: Api, session: Session
) -> None:
    branch = make_branch(session)
    borrower = make_borrower(session, branch)
    identity = make_verified_identity(session, borrower, at=api.clock.now)
    base = f"/v1/identities/telegram/{identity.external_user_id}"

    def consent() -> bool:
        session.expire_all()
        row = session.scalar(select(Consent).where(Consent.borrower_id == borrower.id))
        assert row is not None
        return row.opted_in

    api.put(f"{base}/consent", {"opted_in": True})
    assert consent() is True
    api.put(f"{base}/consent", {"opted_in": False})
    assert consent() is False
    api.put(f"{base}/language", {"locale": "fr"})
    session.expire_all()
    assert session.get_one(Borrower, borrower.id).preferred_language == "fr"
