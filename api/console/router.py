"""The console's pages: sign-in, the queue, claiming a case, sign-out.

Every POST carries a CSRF token in its form: the session's once signed in, and before that
a random one that must match a cookie of its own (double submit). Routes own their
transaction and commit once, as the API's routes do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from api.branches.models import Officer
from api.cases.exceptions import CaseClosed, CaseNotFound, NotCaseOfficer
from api.cases.models import CaseKind
from api.console import auth, followups, queue
from api.console.exceptions import OutsideScope
from api.console.templating import page, request_locale
from api.core.config import Settings
from api.core.deps import NowDep, SessionDep, SettingsDep
from api.kpis.schemas import BUCKETS

router = APIRouter(prefix="/console", include_in_schema=False)

# ``__Host-``: the browser keeps these cookies only when Secure, for this host, on path "/".
SESSION_COOKIE = "__Host-kopa_console"
LOGIN_CSRF_COOKIE = "__Host-kopa_login_csrf"


def _set_cookie(response: Response, name: str, value: str) -> None:
    """A browser-session cookie scripts cannot read, sent over HTTPS to this site only."""
    response.set_cookie(name, value, httponly=True, secure=True, samesite="strict", path="/")


def _drop_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, httponly=True, secure=True, samesite="strict", path="/")


CsrfField = Annotated[str | None, Form(alias="csrf_token")]


@dataclass(frozen=True)
class SignedIn:
    officer: Officer
    csrf_token: str


def signed_in(
    request: Request, session: SessionDep, now: NowDep, settings: SettingsDep
) -> SignedIn | None:
    found = auth.current_session(
        session=session,
        token=request.cookies.get(SESSION_COOKIE),
        now=now,
        policy=settings.console,
    )
    if found is None:
        return None
    console_session, officer = found
    return SignedIn(officer, console_session.csrf_token)


SignedInDep = Annotated[SignedIn | None, Depends(signed_in)]


def redirect_to(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def form_expired(locale: str) -> HTMLResponse:
    return page("message.html", locale=locale, status_code=403, text_key="console.form_expired")


def checked_post(signed: SignedIn | None, csrf_token: str | None) -> SignedIn | Response:
    """Who sent a signed-in form, or the answer when it came without a session or its token."""
    if signed is None:
        return redirect_to("/console/login")
    if not auth.same_token(csrf_token, signed.csrf_token):
        return form_expired(signed.officer.locale)
    return signed


@router.get("")
def home() -> RedirectResponse:
    return redirect_to("/console/queue")


@router.get("/login")
def login_form(
    request: Request, accept_language: Annotated[str | None, Header()] = None
) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or auth.new_csrf_token()
    response = page("login.html", locale=request_locale(accept_language), csrf_token=token)
    _set_cookie(response, LOGIN_CSRF_COOKIE, token)
    return response


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    now: NowDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: CsrfField = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> Response:
    """Sign in; a wrong password counts towards the lockout, and every attempt is recorded."""
    locale = request_locale(accept_language)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not auth.same_token(csrf_token, expected):
        return form_expired(locale)
    address = request.client.host if request.client else "unknown"
    result = auth.sign_in(
        session=session,
        email=email,
        password=password,
        address=address,
        now=now,
        policy=settings.console,
    )
    session.commit()
    if result.outcome is auth.SignIn.ok:
        assert result.session_token is not None
        response = redirect_to("/console/queue")
        _set_cookie(response, SESSION_COOKIE, result.session_token)
        _drop_cookie(response, LOGIN_CSRF_COOKIE)
        return response
    return page(
        "login.html",
        locale=locale,
        status_code=429 if result.outcome is auth.SignIn.rate_limited else 401,
        csrf_token=expected,
        email=email,
        failure=result.outcome.value,
        locked_until=result.locked_until,
    )


@router.post("/logout")
def logout(
    request: Request, signed: SignedInDep, session: SessionDep, csrf_token: CsrfField = None
) -> Response:
    if signed is None:
        return redirect_to("/console/login")
    if not auth.same_token(csrf_token, signed.csrf_token):
        return form_expired(signed.officer.locale)
    auth.end_session(session=session, token=request.cookies.get(SESSION_COOKIE))
    session.commit()
    response = redirect_to("/console/login")
    _drop_cookie(response, SESSION_COOKIE)
    return response


FilterField = Annotated[str | None, Query(max_length=64)]


@router.get("/queue")
def queue_page(
    signed: SignedInDep,
    session: SessionDep,
    now: NowDep,
    settings: SettingsDep,
    branch: FilterField = None,
    officer: FilterField = None,
    bucket: FilterField = None,
    kind: FilterField = None,
) -> Response:
    """The officer's open cases and follow-ups due: missed deadlines first, then the riskiest,
    then the oldest; a filter outside the officer's scope is not found."""
    if signed is None:
        return redirect_to("/console/login")
    try:
        filters = queue.queue_filters(
            session, signed.officer, branch=branch, officer_id=officer, bucket=bucket, kind=kind
        )
    except OutsideScope:
        return page("not_found.html", locale=signed.officer.locale, status_code=404)
    rows = queue.open_cases(session, officer=signed.officer, now=now, filters=filters)
    chosen = {"branch": branch, "officer": officer, "bucket": bucket, "kind": kind}
    shown = _queue_page_context(session, signed.officer, now, settings, filters, chosen)
    session.commit()  # the session's last request time
    return page(
        "queue.html",
        locale=signed.officer.locale,
        officer=signed.officer,
        csrf_token=signed.csrf_token,
        rows=rows,
        **shown,
    )


def _queue_page_context(
    session: Session,
    officer: Officer,
    now: datetime,
    settings: Settings,
    filters: queue.QueueFilters | None = None,
    chosen: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """The follow-ups due, the choices of the queue's filter form, and those ``chosen`` (none
    by default)."""
    due = followups.due_follow_ups(
        session,
        officer=officer,
        now=now,
        promises=settings.promises,
        cases=settings.cases,
        filters=filters,
    )
    return {
        "follow_ups": due,
        "chosen": chosen or dict.fromkeys(("branch", "officer", "bucket", "kind")),
        "branches": queue.scope_branches(session, officer),
        "officers": queue.scope_officers(session, officer),
        "buckets": BUCKETS,
        "kinds": list(CaseKind),
        "follow_up_kinds": list(queue.FollowUpKind),
    }


@router.post("/cases/{reference}/claim")
def claim(
    reference: str,
    signed: SignedInDep,
    session: SessionDep,
    now: NowDep,
    settings: SettingsDep,
    csrf_token: CsrfField = None,
    hx_request: Annotated[str | None, Header()] = None,
) -> Response:
    """Claim a case of the officer's scope (the chat's acknowledge); others are not found."""
    checked = checked_post(signed, csrf_token)
    if isinstance(checked, Response):
        return checked
    officer = checked.officer
    status_code, notice = 200, "officer.done.acknowledged"
    try:
        found = queue.claim(session, officer=officer, reference=reference, now=now)
    except CaseNotFound:
        session.rollback()
        return page("not_found.html", locale=officer.locale, status_code=404)
    except (NotCaseOfficer, CaseClosed) as refused:
        session.rollback()
        status_code = refused.status_code
        notice = (
            "officer.case_not_yours"
            if isinstance(refused, NotCaseOfficer)
            else "officer.case_closed"
        )
        found = queue.scoped_case(session, officer=officer, reference=reference)
    session.commit()
    row = queue.queue_row(session, found, now)
    shown: dict[str, Any] = {
        "locale": officer.locale,
        "status_code": status_code,
        "csrf_token": checked.csrf_token,
        "notice": notice,
    }
    if hx_request:
        return page("case_row.html", row=row, **shown)
    rows = queue.open_cases(session, officer=officer, now=now)
    return page(
        "queue.html",
        officer=officer,
        rows=rows,
        notice_reference=row.case.reference,
        **_queue_page_context(session, officer, now, settings),
        **shown,
    )
