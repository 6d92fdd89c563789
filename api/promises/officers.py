"""A promise to pay an officer records on a borrower's behalf (a call, a visit to the branch).

It is accepted by :func:`api.promises.service.create_promise`, the function the chat's promises
go through, so the same limits hold (amount, date window); the contact ledger keeps which
officer recorded it and where, and the borrower is told in their language on their verified
chat, as a case update tells them.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from api.borrowers import service as borrower_service
from api.borrowers.models import Borrower
from api.branches.models import Officer
from api.core.config import PromisePolicy
from api.ledger import service as ledger
from api.loans.models import Loan
from api.outbox import service as outbox
from api.promises import service
from api.promises.models import PromiseToPay
from i18n import day, money

BORROWER_TOLD = "console.promise.borrower_told"


def record_for_borrower(
    *,
    session: Session,
    borrower: Borrower,
    loan: Loan,
    officer: Officer,
    amount: Decimal,
    promised_date: date,
    now: datetime,
    via: str,
    idempotency_key: str | None = None,
    policy: PromisePolicy | None = None,
) -> PromiseToPay:
    """Accept the promise as the chat would, audit who recorded it and tell the borrower.

    The caller checks that ``officer`` may act for ``borrower`` (their branch scope) and that
    ``loan`` is the borrower's. The same ``idempotency_key`` (a form sent twice) records once.

    Raises:
        What :func:`api.promises.service.create_promise` raises; nothing is written then.
    """
    result = service.create_promise(
        session=session,
        borrower=borrower,
        loan=loan,
        amount=amount,
        promised_date=promised_date,
        channel=via,
        now=now,
        idempotency_key=idempotency_key,
        policy=policy,
    )
    promise = result.promise
    if not result.created:
        return promise
    ledger.record(
        session=session,
        at=now,
        direction="internal",
        kind="promise",
        decision="recorded",
        rule=f"officer:{officer.role.value}",
        borrower_id=borrower.id,
        loan_id=loan.id,
        detail={"officer_id": officer.id, "promise_id": promise.id, "via": via},
    )
    _tell_borrower(session, borrower, promise, officer, now)
    session.flush()
    return promise


def _tell_borrower(
    session: Session, borrower: Borrower, promise: PromiseToPay, officer: Officer, now: datetime
) -> None:
    chats = borrower_service.messageable_identities(session, borrower.id)
    if not chats:
        ledger.record(
            session=session,
            at=now,
            direction="outbound",
            kind="promise",
            decision="suppressed",
            rule="no_verified_chat",
            borrower_id=borrower.id,
            loan_id=promise.loan_id,
            message_key=BORROWER_TOLD,
        )
        return
    outbox.enqueue(
        session=session,
        business_key=f"promise:{promise.id}:recorded_by_officer",
        purpose="promise_recorded",
        channel=chats[0].channel.value,
        recipient=chats[0].external_user_id,
        locale=borrower.preferred_language,
        message_key=BORROWER_TOLD,
        args={
            "officer_name": officer.name,
            "amount": money(promise.amount, promise.currency),
            "date": day(promise.promised_date),
        },
        borrower_id=borrower.id,
        loan_id=promise.loan_id,
        promise_id=promise.id,
        send_at=now,
    )
