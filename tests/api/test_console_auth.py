"""Console sign-in: sessions, cookie flags, CSRF, lockout and the per-address rate limit."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.branches.models import Officer
from api.console.models import ConsoleSession, LoginAttempt
from api.console.router import SESSION_COOKIE
from api.core.config import get_settings
from tests.api.conftest import Clock
from tests.api.console_pages import cheap_hashing, csrf_token, make_staff, sign_in
from tests.api.factories import make_branch

pytestmark = pytest.mark.usefixtures(cheap_hashing.__name__)


@pytest.fixture
def officer(session: Session) -> Officer:
    return make_staff(session, [make_branch(session)])


def _attempts(session: Session, officer: Officer) -> list[str]:
    query = select(LoginAttempt.result).where(LoginAttempt.officer_id == officer.id)
    return list(session.scalars(query.order_by(LoginAttempt.id)))


def test_sign_in_opens_a_server_side_session_in_a_secure_cookie(
    web: TestClient, officer: Officer, session: Session
) -> None:
    response = sign_in(web, officer.email)

    assert (response.status_code, response.headers["location"]) == (303, "/console/queue")
    cookie = response.headers["set-cookie"]
    name, _, rest = cookie.partition("=")
    token = rest.split(";")[0]
    flags = {flag.strip().lower() for flag in cookie.split(";")[1:]}
    assert name == SESSION_COOKIE == "__Host-kopa_console"
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags
    assert not any(flag.startswith("domain") for flag in flags)
    assert len(token) >= 43  # 32 random bytes
    stored = session.scalars(
        select(ConsoleSession.id_hash).where(ConsoleSession.officer_id == officer.id)
    ).all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]  # never the token itself
    assert web.get("/console/queue").status_code == 200
    assert _attempts(session, officer) == ["ok"]


def test_each_sign_in_gets_a_new_random_session(web: TestClient, officer: Officer) -> None:
    first = sign_in(web, officer.email).cookies[SESSION_COOKIE]
    second = sign_in(web, officer.email).cookies[SESSION_COOKIE]

    assert first != second


def test_wrong_password_or_unknown_email_is_refused_alike(
    web: TestClient, officer: Officer, session: Session
) -> None:
    wrong = sign_in(web, officer.email, "not the password")
    unknown = sign_in(web, "nobody@mfi.example")

    assert (wrong.status_code, unknown.status_code) == (401, 401)
    assert "Wrong email or password." in wrong.text
    assert "Wrong email or password." in unknown.text
    assert SESSION_COOKIE not in wrong.cookies
    session.refresh(officer)
    assert officer.failed_logins == 1
    assert _attempts(session, officer) == ["bad_credentials"]
    assert web.get("/console/queue", follow_redirects=False).status_code == 303


def test_the_account_locks_after_too_many_wrong_passwords(
    web: TestClient, officer: Officer, session: Session, clock: Clock
) -> None:
    policy = get_settings().console
    answers = [
        sign_in(web, officer.email, "wrong password!").status_code
        for _ in range(policy.max_failures)
    ]
    locked = sign_in(web, officer.email)  # the right password, too late

    assert answers == [401] * policy.max_failures
    assert locked.status_code == 401
    assert "this account is locked until" in locked.text
    assert _attempts(session, officer)[-2:] == ["locked", "locked"]
    clock.advance(minutes=policy.lockout_minutes + 1)
    assert sign_in(web, officer.email).status_code == 303


def test_a_success_resets_the_failure_count(
    web: TestClient, officer: Officer, session: Session
) -> None:
    sign_in(web, officer.email, "wrong password!")
    sign_in(web, officer.email)

    session.refresh(officer)
    assert (officer.failed_logins, officer.locked_until) == (0, None)


@pytest.fixture
def strict_address_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KOPA_CONSOLE__FAILURES_PER_ADDRESS", "3")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("KOPA_CONSOLE__FAILURES_PER_ADDRESS")
    get_settings.cache_clear()


@pytest.mark.usefixtures("strict_address_limit")
def test_one_address_guessing_many_accounts_is_slowed_down(
    web: TestClient, officer: Officer, session: Session, clock: Clock
) -> None:
    for n in range(3):
        assert sign_in(web, f"guess{n}@mfi.example").status_code == 401
    refused = sign_in(web, officer.email)  # even the right password is not checked

    assert refused.status_code == 429
    assert "Too many failed sign-ins from your network" in refused.text
    assert _attempts(session, officer) == ["rate_limited"]
    clock.advance(minutes=get_settings().console.address_window_minutes + 1)
    assert sign_in(web, officer.email).status_code == 303


def test_sign_in_without_the_form_token_is_refused(
    web: TestClient, officer: Officer, session: Session
) -> None:
    web.get("/console/login")
    no_token = web.post(
        "/console/login",
        data={"email": officer.email, "password": "correct horse battery"},
        follow_redirects=False,
    )
    forged = web.post(
        "/console/login",
        data={
            "email": officer.email,
            "password": "correct horse battery",
            "csrf_token": "forged",
        },
        follow_redirects=False,
    )

    assert (no_token.status_code, forged.status_code) == (403, 403)
    assert "This form has expired" in no_token.text
    assert SESSION_COOKIE not in web.cookies
    assert _attempts(session, officer) == []


def test_sign_out_needs_the_session_token_and_ends_the_session(
    web: TestClient, officer: Officer
) -> None:
    sign_in(web, officer.email)
    queue = web.get("/console/queue")

    forged = web.post("/console/logout", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert web.get("/console/queue").status_code == 200
    out = web.post(
        "/console/logout", data={"csrf_token": csrf_token(queue)}, follow_redirects=False
    )
    assert (out.status_code, out.headers["location"]) == (303, "/console/login")
    assert web.get("/console/queue", follow_redirects=False).status_code == 303


def test_a_stolen_cookie_is_useless_after_sign_out(web: TestClient, officer: Officer) -> None:
    sign_in(web, officer.email)
    stolen = web.cookies[SESSION_COOKIE]
    queue = web.get("/console/queue")
    web.post("/console/logout", data={"csrf_token": csrf_token(queue)})

    web.cookies.set(SESSION_COOKIE, stolen)
    assert web.get("/console/queue", follow_redirects=False).status_code == 303


def test_an_idle_session_ends(web: TestClient, officer: Officer, clock: Clock) -> None:
    sign_in(web, officer.email)
    clock.advance(minutes=get_settings().console.session_idle_minutes - 1)
    assert web.get("/console/queue", follow_redirects=False).status_code == 200
    clock.advance(minutes=get_settings().console.session_idle_minutes - 1)
    assert web.get("/console/queue", follow_redirects=False).status_code == 200
    clock.advance(minutes=get_settings().console.session_idle_minutes)

    assert web.get("/console/queue", follow_redirects=False).status_code == 303


def test_pages_carry_security_headers_and_load_nothing_from_elsewhere(
    web: TestClient,
) -> None:
    page = web.get("/console/login")

    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert '<script src="/console/static/htmx.min.js"' in page.text
    assert "http://" not in page.text and "https://" not in page.text
    htmx = web.get("/console/static/htmx.min.js")
    assert htmx.status_code == 200
    assert 'version:"2.0.11"' in htmx.text.replace(" ", "")


def test_the_sign_in_page_speaks_the_browsers_language(web: TestClient) -> None:
    page = web.get("/console/login", headers={"Accept-Language": "fr-SN,fr;q=0.9,en;q=0.5"})

    assert '<html lang="fr">' in page.text
    assert "Connexion à la console Kopa" in page.text
    assert "Mot de passe" in page.text
