"""A wrong password in the browser: the error is shown and no session is opened."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.branches.models import Officer
from api.console.models import ConsoleSession, LoginAttempt
from api.console.router import SESSION_COOKIE
from tests.browser.conftest import Console
from tests.browser.drive import Page, expect

ADMIN = "admin@mfi.example"


def test_a_wrong_password_shows_the_error_and_opens_no_session(
    console: Console, page: Page
) -> None:
    console.sign_in(page, ADMIN, "not the password at all")

    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page.get_by_label("Work email")).to_have_value(ADMIN)
    console.shot(page, "wrong-password")
    assert SESSION_COOKIE not in {c.get("name") for c in page.context.cookies()}
    page.goto("/console/queue")
    expect(page).to_have_url(f"{console.url}/console/login")
    with Session(console.engine) as session:
        admin = session.scalars(select(Officer).where(Officer.email == ADMIN)).one()
        opened = session.scalars(
            select(ConsoleSession).where(ConsoleSession.officer_id == admin.id)
        )
        assert list(opened) == []
        attempts = session.scalars(select(LoginAttempt.result).where(LoginAttempt.email == ADMIN))
        assert "bad_credentials" in list(attempts)
