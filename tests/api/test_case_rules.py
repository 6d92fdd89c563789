"""One unresolved case per borrower and kind, and daily caps: officers are never flooded.

A duplicated webhook reaches the API as a second request with a different Idempotency-Key
(Rasa stamps the duplicate with a new time): it must be added to the open case and alert nobody.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.cases.models import Case, CaseKind, CaseNote, CaseStatus
from api.core.config import get_settings
from api.ledger.models import ContactEvent
from api.outbox.models import OutboxMessage
from tests.api.conftest import Api
from tests.api.factories import make_verified_identity
from tests.api.test_cases import World, _act, _world


def _alerts(session: Session) -> int:
    session.expire_all()
    query = select(func.count()).select_from(OutboxMessage)
    return int(session.scalar(query.where(OutboxMessage.purpose == "officer_alert")) or 0)


def _notes(session: Session, reference: str) -> list[CaseNote]:
    case_id = session.scalar(select(Case.id).where(Case.reference == reference))
    return list(
        session.scalars(select(CaseNote).where(CaseNote.case_id == case_id).order_by(CaseNote.id))
    )


def _open(api: Api, world: World, kind: str, key: str, **body: str) -> dict[str, object]:
    response = api.post(
        f"{world.base}/cases", {"kind": kind, **body}, headers={"Idempotency-Key": key}
    )
    assert response.status_code in (200, 201), response.text
    return {"status_code": response.status_code, **response.json()}


def test_a_duplicated_request_with_another_key_adds_to_the_open_case_and_alerts_once(
    api: Api, session: Session
) -> None:
    world = _world(api, session)
    first = _open(api, world, "officer_request", "tg:1:100")
    again = _open(api, world, "officer_request", "tg:1:100-redelivered", borrower_words="hello?")
    assert (first["status_code"], first["disposition"]) == (201, "opened")
    assert (again["status_code"], again["reference"], again["disposition"]) == (
        200,
        first["reference"],
        "added",
    )
    assert _alerts(session) == 1
    [note] = _notes(session, str(first["reference"]))
    assert (note.kind, note.borrower_words, note.capped) == (
        CaseKind.officer_request,
        "hello?",
        False,
    )
    # A retry of the second request answers the same and adds nothing.
    retry = _open(api, world, "officer_request", "tg:1:100-redelivered")
    assert (retry["reference"], retry["disposition"]) == (first["reference"], "added")
    assert len(_notes(session, str(first["reference"]))) == 1

    # Once resolved, a new request opens a new case (and alerts).
    _act(api, str(first["reference"]), "resolve", world.officer, outcome="no_action")
    later = _open(api, world, "officer_request", "tg:1:200")
    assert later["disposition"] == "opened" and later["reference"] != first["reference"]
    assert _alerts(session) == 2


def test_a_second_payment_claim_is_added_to_the_open_claim(api: Api, session: Session) -> None:
    world = _world(api, session)
    first = api.post(f"{world.base}/payment-claims", {"reference": "NOPE1"}).json()
    second = api.post(f"{world.base}/payment-claims", {"reference": "NOPE2"}).json()
    assert first["disposition"] == "opened" and second["disposition"] == "added"
    assert second["case_reference"] == first["case_reference"]
    assert _alerts(session) == 1
    [note] = _notes(session, first["case_reference"])
    assert note.details == {"amount": None, "paid_on": None, "reference": "NOPE2"}


def test_the_database_refuses_a_second_unresolved_case_of_a_kind(
    api: Api, session: Session
) -> None:
    world = _world(api, session)
    reference = str(_open(api, world, "complaint", "c-1")["reference"])
    case = session.scalar(select(Case).where(Case.reference == reference))
    assert case is not None
    twin = Case(
        reference="CP-TWIN2",
        kind=CaseKind.complaint,
        borrower_id=world.borrower.id,
        status=CaseStatus.acknowledged,
        assigned_officer_id=world.officer.id,
        sla_due_at=case.sla_due_at,
    )
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(twin)
        session.flush()
    resolved = Case(
        reference="CP-OLD22",
        kind=CaseKind.complaint,
        borrower_id=world.borrower.id,
        status=CaseStatus.resolved,
        assigned_officer_id=world.officer.id,
        sla_due_at=case.sla_due_at,
    )
    session.add(resolved)
    session.flush()  # resolved cases are history: any number of them


def test_officer_requests_and_cases_are_capped_per_day(api: Api, session: Session) -> None:
    policy = get_settings().cases
    assert (policy.max_officer_requests_per_day, policy.max_cases_per_day) == (2, 3)
    world = _world(api, session)
    references = []
    for n in range(2):
        opened = _open(api, world, "officer_request", f"or-{n}")
        assert opened["disposition"] == "opened"
        references.append(str(opened["reference"]))
        _act(api, references[-1], "resolve", world.officer, outcome="no_action")
        api.clock.advance(minutes=5)
    third = _open(api, world, "officer_request", "or-2", borrower_words="call me")
    assert (third["status_code"], third["disposition"], third["reference"]) == (
        200,
        "capped",
        references[-1],
    )
    assert _alerts(session) == 2
    [note] = _notes(session, references[-1])
    assert (note.capped, note.borrower_words) == (True, "call me")

    # A complaint is a third case today: it opens. Then the day's cap of 3 cases is reached.
    complaint = _open(api, world, "complaint", "cp-1")
    assert complaint["disposition"] == "opened"
    _act(api, str(complaint["reference"]), "resolve", world.officer, outcome="no_action")
    claim = api.post(f"{world.base}/payment-claims", {"reference": "NOPE9"}).json()
    assert claim["disposition"] == "capped" and claim["case_reference"] == complaint["reference"]
    assert _alerts(session) == 3
    decisions = session.scalars(
        select(ContactEvent.decision).where(
            ContactEvent.kind == "case", ContactEvent.borrower_id == world.borrower.id
        )
    ).all()
    assert decisions.count("opened") == 3 and decisions.count("capped") == 2

    # Hardship is never capped: it pauses collection.
    hardship = _open(api, world, "hardship", "hd-1")
    assert hardship["disposition"] == "opened"
    # 24 hours after the first request the cap has room again (the chat verifies again).
    api.clock.advance(hours=24)
    identity = make_verified_identity(session, world.borrower, at=api.clock.now)
    again = api.post(
        f"/v1/identities/telegram/{identity.external_user_id}/cases",
        {"kind": "officer_request"},
        headers={"Idempotency-Key": "or-3"},
    )
    assert (again.status_code, again.json()["disposition"]) == (201, "opened")


def test_a_borrower_flooding_requests_gives_the_officer_one_alert(
    api: Api, session: Session
) -> None:
    world = _world(api, session)
    answers = {
        str(_open(api, world, "officer_request", f"flood-{n}")["reference"]) for n in range(30)
    }
    assert len(answers) == 1 and _alerts(session) == 1
    # Past the day's notes cap only the request is counted: no unbounded growth.
    assert len(_notes(session, answers.pop())) == get_settings().cases.max_notes_per_day
