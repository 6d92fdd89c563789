"""From the queue, an officer calls a borrower whose promise was not kept, records that nobody
answered, without a case, and finds the call on the borrower's timeline and the follow-up off
the queue until it is due again."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower
from api.cases.models import CallOutcome, LoanCall
from api.ledger.models import ContactEvent
from api.promises import service as promise_service
from tests.api.console_pages import promiser
from tests.browser.conftest import Console
from tests.browser.drive import Page, expect


def test_an_officer_records_a_call_from_a_broken_promise(console: Console, page: Page) -> None:
    world = console.world
    with Session(console.engine, expire_on_commit=False) as session:
        loan = promiser(session, world.portfolio.a, world.portfolio.officer, world.clock)
        made = world.clock.now - timedelta(days=10)  # due in a day, so over long ago
        promise = promise_service.create_promise(
            session=session,
            borrower=session.get_one(Borrower, loan.borrower_id),
            loan=loan,
            amount=Decimal("700"),
            promised_date=made.date() + timedelta(days=1),
            channel="telegram",
            now=made,
        ).promise
        session.commit()
    row = page.locator(f"#follow-up-broken_promise-{promise.id}")

    console.sign_in(page, "officer@mfi.example")
    expect(row).to_contain_text("Promise not kept")
    row.get_by_role("link", name="Call and record").click()

    call = page.locator("#call-form")
    call.get_by_label("Loan").select_option(str(loan.id))
    call.get_by_label("What happened").select_option("no_answer")
    call.get_by_label("Note").fill("Phone off twice")
    call.get_by_role("button", name="Record the call").click()
    expect(page.get_by_role("status")).to_have_text("Call recorded: No answer.")
    timeline = page.locator("ol.timeline")
    expect(timeline).to_contain_text(f"Grace Otieno called about loan {loan.account_reference}")
    expect(timeline).to_contain_text("Phone off twice")
    console.shot(page, "officer-follow-up-call")

    page.get_by_role("link", name="Back to the cases").click()
    expect(page.locator("#follow-ups")).to_be_visible()
    expect(row).to_have_count(0)

    with Session(console.engine) as session:
        [kept] = session.scalars(select(LoanCall).where(LoanCall.loan_id == loan.id))
        assert (kept.call_outcome, kept.officer_words) == (CallOutcome.no_answer, "Phone off twice")
        audited = session.scalars(
            select(ContactEvent.decision).where(
                ContactEvent.loan_id == loan.id, ContactEvent.kind == "call"
            )
        )
        assert list(audited) == ["no_answer"]
