"""The call an officer records on a borrower's page, about one of their loans, outside any case:
what they do from a broken promise's follow-up in the queue.

It goes through :func:`api.cases.officers.record_loan_call`, which audits it in the contact
ledger as a call on a case is audited; :mod:`api.console.followups` then follows it as it
follows calls on cases. An outcome the form does not offer is refused on the form in the
officer's language and nothing is written. Like the other forms it carries the session's CSRF
token and a one-time nonce, so a form sent twice records once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError

from api.cases import officers
from api.cases.exceptions import CaseIdempotencyKeyReused
from api.cases.models import CallOutcome
from api.console.promises import CallForm, borrower_page, form_target
from api.console.router import CsrfField, SignedInDep
from api.core.deps import NowDep, SessionDep, SettingsDep

router = APIRouter(prefix="/console", include_in_schema=False)

# A short note: what the call was about is the loan's; longer notes belong on a case.
WORDS_LIMIT = 500


@router.post("/borrowers/{borrower_id}/call")
def record_call(
    borrower_id: int,
    signed: SignedInDep,
    session: SessionDep,
    now: NowDep,
    settings: SettingsDep,
    loan: Annotated[str, Form(max_length=64)] = "",
    outcome: Annotated[str, Form(max_length=32)] = "",
    words: Annotated[str, Form(max_length=WORDS_LIMIT)] = "",
    nonce: Annotated[str | None, Form(max_length=64)] = None,
    csrf_token: CsrfField = None,
) -> Response:
    """Record a call about a loan of a borrower of the officer's scope; others are not found."""
    target = form_target(session, signed, csrf_token, borrower_id, loan)
    if isinstance(target, Response):
        return target
    checked, found, chosen = target
    officer = checked.officer
    typed = CallForm(loan_id=loan, outcome=outcome, words=words)
    known = {o.value: o for o in CallOutcome}
    if outcome not in known:
        refused = CallForm(typed.loan_id, typed.outcome, typed.words, "console.followup.no_outcome")
        return borrower_page(
            session, checked, found, now, settings.promises, status_code=422, call_form=refused
        )
    try:
        officers.record_loan_call(
            session=session,
            loan=chosen,
            officer=officer,
            outcome=known[outcome],
            now=now,
            words=words,
            via="console",
            idempotency_key=f"console:{officer.id}:{nonce}" if nonce else None,
        )
        session.commit()
    except (CaseIdempotencyKeyReused, IntegrityError):
        # The same form was sent for another loan, or committed first by a parallel request.
        session.rollback()
        refused = CallForm(
            typed.loan_id, typed.outcome, typed.words, "console.followup.form_reused"
        )
        return borrower_page(
            session, checked, found, now, settings.promises, status_code=409, call_form=refused
        )
    done = CallForm(done=f"console.call.{outcome}")
    return borrower_page(session, checked, found, now, settings.promises, call_form=done)
