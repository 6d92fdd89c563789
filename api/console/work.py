"""Working a case from the console: its page, a call, a note, resolving (a borrower's page is
:mod:`api.console.promises`).

Every action goes through :mod:`api.cases.officers`, the functions the chat's buttons call, on a
case the officer's branch scope reaches (:func:`api.console.queue.scoped_case`); a case or
borrower outside it is "not found", like one that does not exist. Each form carries the
session's CSRF token and a one-time ``nonce``, which becomes the note's idempotency key, so a
form sent twice records once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.cases import officers
from api.cases.exceptions import (
    CaseClosed,
    CaseIdempotencyKeyReused,
    CaseNotFound,
    NotCaseOfficer,
)
from api.cases.models import CallOutcome, Case, CaseOutcome
from api.console import auth, queue
from api.console.router import CsrfField, SignedIn, SignedInDep, checked_post, redirect_to
from api.console.templating import page
from api.core.deps import NowDep, SessionDep
from i18n import nested

router = APIRouter(prefix="/console", include_in_schema=False)

NonceField = Annotated[str | None, Form(max_length=64)]
WordsField = Annotated[str, Form(max_length=2000)]
NOTE_LIMIT = 2000
_RACED = "console.work.raced"
_REFUSALS = {
    NotCaseOfficer: "officer.case_not_yours",
    CaseClosed: "officer.case_closed",
    CaseIdempotencyKeyReused: "console.work.form_reused",
}


def _not_found(locale: str) -> Response:
    return page("not_found.html", locale=locale, status_code=404)


def _case_page(
    session: Session,
    signed: SignedIn,
    found: Case,
    now: datetime,
    *,
    status_code: int = 200,
    notice: str | None = None,
    notice_args: dict[str, Any] | None = None,
) -> Response:
    return page(
        "case.html",
        locale=signed.officer.locale,
        status_code=status_code,
        officer=signed.officer,
        csrf_token=signed.csrf_token,
        nonce=auth.new_csrf_token(),
        row=queue.queue_row(session, found, now),
        notes=queue.case_notes(session, found),
        call_outcomes=list(CallOutcome),
        case_outcomes=list(CaseOutcome),
        notice=notice,
        notice_args={"reference": found.reference, **(notice_args or {})},
    )


@router.get("/cases/{reference}")
def case_page(reference: str, signed: SignedInDep, session: SessionDep, now: NowDep) -> Response:
    """A case of the officer's scope, its notes and calls, and the forms to work it."""
    if signed is None:
        return redirect_to("/console/login")
    try:
        found = queue.scoped_case(session, officer=signed.officer, reference=reference)
    except CaseNotFound:
        return _not_found(signed.officer.locale)
    session.commit()  # the session's last request time
    return _case_page(session, signed, found, now)


def _work(
    signed: SignedIn | None,
    session: Session,
    now: datetime,
    reference: str,
    csrf_token: str | None,
    action: Callable[..., object],
    done: str,
    done_args: dict[str, Any] | None = None,
) -> Response:
    """Call ``action(case=..., officer=...)`` on a case of the officer's scope and answer the
    case page with a notice of what was done or refused."""
    checked = checked_post(signed, csrf_token)
    if isinstance(checked, Response):
        return checked
    try:
        found = queue.scoped_case(session, officer=checked.officer, reference=reference)
    except CaseNotFound:
        return _not_found(checked.officer.locale)
    try:
        action(case=found, officer=checked.officer)
        session.commit()
    except (NotCaseOfficer, CaseClosed, CaseIdempotencyKeyReused) as refused:
        session.rollback()
        notice = _REFUSALS[type(refused)]
        return _case_page(
            session, checked, found, now, status_code=refused.status_code, notice=notice
        )
    except IntegrityError:
        # The same form, or the same action by someone else, committed first (a unique key
        # such as the note's nonce or the borrower's update held): show the case as it is.
        session.rollback()
        return _case_page(session, checked, found, now, status_code=409, notice=_RACED)
    return _case_page(session, checked, found, now, notice=done, notice_args=done_args)


def _nonce_key(nonce: str | None) -> str | None:
    return f"console:{nonce}" if nonce else None


@router.post("/cases/{reference}/call")
def record_call(
    reference: str,
    signed: SignedInDep,
    session: SessionDep,
    now: NowDep,
    outcome: Annotated[CallOutcome, Form()],
    words: WordsField = "",
    nonce: NonceField = None,
    csrf_token: CsrfField = None,
) -> Response:
    """Record a call and its outcome; the borrower is told as by the chat's "called"."""
    call = partial(
        officers.record_call,
        session=session,
        outcome=outcome,
        now=now,
        words=words,
        via="console",
        idempotency_key=_nonce_key(nonce),
    )
    return _work(signed, session, now, reference, csrf_token, call, "officer.done.called")


@router.post("/cases/{reference}/note")
def add_note(
    reference: str,
    signed: SignedInDep,
    session: SessionDep,
    now: NowDep,
    words: Annotated[str, Form(min_length=1, max_length=NOTE_LIMIT)],
    nonce: NonceField = None,
    csrf_token: CsrfField = None,
) -> Response:
    """Keep a note on the case for whoever works it next; the borrower is not told."""
    note = partial(
        officers.add_note,
        session=session,
        words=words,
        now=now,
        via="console",
        idempotency_key=_nonce_key(nonce),
    )
    return _work(signed, session, now, reference, csrf_token, note, "console.work.noted")


@router.post("/cases/{reference}/resolve")
def resolve(
    reference: str,
    signed: SignedInDep,
    session: SessionDep,
    now: NowDep,
    outcome: Annotated[CaseOutcome, Form()],
    csrf_token: CsrfField = None,
) -> Response:
    """Close the case with an outcome; the borrower is told it in their language."""
    close = partial(
        officers.act_as, session=session, action="resolve", now=now, outcome=outcome, via="console"
    )
    shown = {"outcome": nested(f"officer.outcome.{outcome.value}")}
    return _work(signed, session, now, reference, csrf_token, close, "officer.done.resolved", shown)
