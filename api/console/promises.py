"""A borrower's page, and the promise to pay an officer records there on the borrower's behalf
(the call an officer records there is :mod:`api.console.calls`).

The promise goes through :func:`api.promises.officers.record_for_borrower`, so the chat's rules
hold (amount above zero and at most what is owed, a date from today to the policy's limit); a
refusal is shown on the form in the officer's language and nothing is written. The amount is
read as the officer writes numbers (Babel, their locale) with no more decimals than the loan's
currency has. Like the other forms it carries the session's CSRF token and a one-time nonce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from babel.numbers import NumberFormatError, get_currency_precision, parse_decimal
from fastapi import APIRouter, Form
from fastapi.responses import Response
from sqlalchemy.orm import Session

import i18n
from api.borrowers.models import Borrower
from api.cases.models import CallOutcome
from api.console import auth, timeline
from api.console.router import CsrfField, SignedIn, SignedInDep, checked_post, redirect_to
from api.console.templating import page
from api.core.config import PromisePolicy
from api.core.deps import NowDep, SessionDep, SettingsDep
from api.core.errors import DomainError
from api.loans import service as loan_service
from api.loans.models import Loan
from api.promises import officers as promise_officers
from api.promises.exceptions import (
    IdempotencyKeyReused,
    PromiseAmountAboveOutstanding,
    PromiseAmountNotPositive,
    PromiseDateBeyondPolicy,
    PromiseDateInPast,
)

router = APIRouter(prefix="/console", include_in_schema=False)

_NUMBER = re.compile(r"^[+-]?[\d.,'\s\u00a0\u202f]+$")


class FormError(Exception):
    """What the officer must correct, as a message key and its arguments."""

    def __init__(self, key: str, **args: Any) -> None:
        super().__init__(key)
        self.key = key
        self.args_ = args


@dataclass(frozen=True)
class PromiseForm:
    """The promise form as shown: what was typed (kept after a refusal) and its limits."""

    loan_id: str = ""
    amount: str = ""
    promised_date: str = ""
    today: date | None = None
    last_day: date | None = None
    error: tuple[str, dict[str, Any]] | None = None
    done: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallForm:
    """The call form as shown: what was chosen and typed (kept after a refusal)."""

    loan_id: str = ""
    outcome: str = ""
    words: str = ""
    error: str | None = None  # a message key
    done: str | None = None  # the outcome recorded, a message key


def parse_amount(text: str, currency: str, locale: str) -> Decimal:
    """The amount the officer wrote, as they write numbers, in ``currency``'s minor units.

    Raises:
        FormError: not a plain number, or more decimals than the currency has.
    """
    decimals = get_currency_precision(currency)
    wrong = FormError("console.promise.error.amount_format", currency=currency, decimals=decimals)
    cleaned = text.strip()
    if not _NUMBER.match(cleaned):
        raise wrong
    try:
        amount = parse_decimal(cleaned, locale=i18n.babel_locale(locale), strict=True)
    except NumberFormatError:
        raise wrong from None
    exponent = amount.as_tuple().exponent
    if not amount.is_finite() or (isinstance(exponent, int) and -exponent > decimals):
        raise wrong
    return amount


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise FormError("console.promise.error.date_format") from None


def _refusal(refused: DomainError, currency: str) -> FormError:
    if isinstance(refused, PromiseAmountAboveOutstanding):
        owed = i18n.money(refused.context["outstanding"], currency)
        return FormError("console.promise.error.amount_above_outstanding", outstanding=owed)
    if isinstance(refused, PromiseDateBeyondPolicy):
        last = i18n.day(date.fromisoformat(refused.context["max_date"]))
        return FormError("console.promise.error.date_beyond_policy", max_date=last)
    keys = {
        PromiseAmountNotPositive: "console.promise.error.amount_not_positive",
        PromiseDateInPast: "console.promise.error.date_in_past",
        IdempotencyKeyReused: "console.promise.error.form_reused",
    }
    return FormError(keys[type(refused)])


def form_target(
    session: Session,
    signed: SignedIn | None,
    csrf_token: str | None,
    borrower_id: int,
    loan_id: str,
) -> tuple[SignedIn, Borrower, Loan] | Response:
    """Who sent a form of a borrower's page, the borrower and the loan it names (their only
    loan when it names none); or the answer when it came without its session or token, or names
    a borrower or loan the officer's scope does not reach (not found, as one that is missing).
    """
    checked = checked_post(signed, csrf_token)
    if isinstance(checked, Response):
        return checked
    found = timeline.scoped_borrower(session, officer=checked.officer, borrower_id=borrower_id)
    loans = {str(x.id): x for x in loan_service.loans_of(session, found.id)} if found else {}
    chosen = loans.get(loan_id.strip()) or (next(iter(loans.values())) if len(loans) == 1 else None)
    if found is None or chosen is None:
        return page("not_found.html", locale=checked.officer.locale, status_code=404)
    return checked, found, chosen


def borrower_page(
    session: Session,
    signed: SignedIn,
    found: Borrower,
    now: datetime,
    policy: PromisePolicy,
    *,
    status_code: int = 200,
    form: PromiseForm | None = None,
    call_form: CallForm | None = None,
) -> Response:
    """The borrower's loans, timeline, promise and call forms (fresh, or as the officer sent
    them)."""
    view = timeline.borrower_view(session, borrower=found, now=now)
    today = loan_service.local_today(view.branch.timezone, now)
    shown = form or PromiseForm()
    limits = PromiseForm(
        loan_id=shown.loan_id,
        amount=shown.amount,
        promised_date=shown.promised_date,
        today=today,
        last_day=today + timedelta(days=policy.max_days_ahead),
        error=shown.error,
        done=shown.done,
    )
    return page(
        "borrower.html",
        locale=signed.officer.locale,
        status_code=status_code,
        officer=signed.officer,
        csrf_token=signed.csrf_token,
        nonce=auth.new_csrf_token(),
        view=view,
        promise_form=limits,
        call_form=call_form or CallForm(),
        call_outcomes=list(CallOutcome),
    )


@router.get("/borrowers/{borrower_id}")
def show_borrower(
    borrower_id: int, signed: SignedInDep, session: SessionDep, now: NowDep, settings: SettingsDep
) -> Response:
    """One borrower's loans and everything that happened to them, newest first."""
    if signed is None:
        return redirect_to("/console/login")
    found = timeline.scoped_borrower(session, officer=signed.officer, borrower_id=borrower_id)
    if found is None:
        return page("not_found.html", locale=signed.officer.locale, status_code=404)
    session.commit()  # the session's last request time
    return borrower_page(session, signed, found, now, settings.promises)


TextField = Annotated[str, Form(max_length=64)]


@router.post("/borrowers/{borrower_id}/promise")
def record_promise(
    borrower_id: int,
    signed: SignedInDep,
    session: SessionDep,
    now: NowDep,
    settings: SettingsDep,
    loan: TextField = "",
    amount: TextField = "",
    promised_date: TextField = "",
    nonce: Annotated[str | None, Form(max_length=64)] = None,
    csrf_token: CsrfField = None,
) -> Response:
    """Record a promise to pay for a borrower of the officer's scope; others are not found."""
    target = form_target(session, signed, csrf_token, borrower_id, loan)
    if isinstance(target, Response):
        return target
    checked, found, chosen = target
    officer = checked.officer
    typed = PromiseForm(loan_id=loan, amount=amount, promised_date=promised_date)
    try:
        value = parse_amount(amount, chosen.currency, officer.locale)
        day = _parse_date(promised_date)
        try:
            promise = promise_officers.record_for_borrower(
                session=session,
                borrower=found,
                loan=chosen,
                officer=officer,
                amount=value,
                promised_date=day,
                now=now,
                via="console",
                idempotency_key=f"console:{officer.id}:{nonce}" if nonce else None,
                policy=settings.promises,
            )
        except (
            PromiseAmountNotPositive,
            PromiseAmountAboveOutstanding,
            PromiseDateInPast,
            PromiseDateBeyondPolicy,
            IdempotencyKeyReused,
        ) as refused:
            raise _refusal(refused, chosen.currency) from None
    except FormError as wrong:
        session.rollback()
        refused_form = PromiseForm(
            loan_id=typed.loan_id,
            amount=typed.amount,
            promised_date=typed.promised_date,
            error=(wrong.key, wrong.args_),
        )
        return borrower_page(
            session, checked, found, now, settings.promises, status_code=422, form=refused_form
        )
    session.commit()
    done = {
        "amount": i18n.money(promise.amount, promise.currency),
        "date": i18n.day(promise.promised_date),
    }
    return borrower_page(
        session, checked, found, now, settings.promises, form=PromiseForm(done=done)
    )
