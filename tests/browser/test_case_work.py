"""An officer signs in, claims a hardship case, calls, notes and resolves it, and finds on the
borrower's page what the borrower was told, in the borrower's language (Swahili)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.cases.models import CallOutcome, Case, CaseNote, CaseOutcome, CaseStatus
from api.console.router import SESSION_COOKIE
from api.ledger.models import ContactEvent
from api.outbox.models import OutboxMessage
from tests.browser.conftest import Console
from tests.browser.drive import Page, expect


def test_an_officer_works_a_hardship_case_and_the_borrower_is_told_in_swahili(
    console: Console, page: Page
) -> None:
    case = console.world.hardship
    reference = case.reference
    row = page.locator(f"#case-{reference}")

    console.sign_in(page, "officer@mfi.example")

    expect(page).to_have_url(f"{console.url}/console/queue")
    expect(row).to_contain_text("hardship request")
    expect(row).to_contain_text("waiting")
    # The session cookie is Secure and __Host-: Chromium keeps it from http://127.0.0.1, a
    # trustworthy origin, so the tests need no TLS and production's cookie stays as it is.
    [cookie] = [c for c in page.context.cookies() if c.get("name") == SESSION_COOKIE]
    assert (cookie.get("secure"), cookie.get("httpOnly"), cookie.get("sameSite")) == (
        True,
        True,
        "Strict",
    )
    console.shot(page, "officer-queue")

    row.get_by_role("button", name="Claim").click()
    expect(row).to_contain_text(f"Case {reference} acknowledged. The borrower has been told.")
    expect(row).to_contain_text("claimed")
    console.shot(page, "officer-claimed")

    row.get_by_role("link", name=reference).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Case {reference}: hardship request")
    call = page.locator("form", has=page.get_by_role("button", name="Record the call"))
    call.get_by_label("What happened").select_option("promise_to_pay")
    call.get_by_label("Note").fill("Will pay on Friday after the market")
    call.get_by_role("button", name="Record the call").click()
    expect(page.get_by_role("status")).to_have_text(f"Case {reference}: call recorded.")

    note = page.locator("form", has=page.get_by_role("button", name="Save the note"))
    note.get_by_label("Note").fill("Shop flooded in November")
    note.get_by_role("button", name="Save the note").click()
    expect(page.get_by_role("status")).to_have_text(f"Case {reference}: note saved.")
    notes = page.locator("ul.notes")
    expect(notes).to_contain_text("Will pay on Friday after the market")
    expect(notes).to_contain_text("Shop flooded in November")
    console.shot(page, "officer-call-and-note")

    resolve = page.locator("form", has=page.get_by_role("button", name="Resolve"))
    resolve.get_by_label("Outcome").select_option("plan_agreed")
    resolve.get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("status")).to_contain_text(f"Case {reference} resolved")
    expect(page.locator("dl.facts")).to_contain_text("resolved: Plan agreed")
    console.shot(page, "officer-resolved")

    page.locator("dl.facts").get_by_role("link").click()
    expect(page.locator("dl.facts")).to_contain_text("sw")
    told = f"Ombi lako {reference} limefungwa: tumekubaliana mpango wa kulipa. Asante."
    expect(page.locator("ol.timeline")).to_contain_text(told)
    expect(page.locator("ol.timeline")).to_contain_text("Will pay on Friday after the market")
    console.shot(page, "officer-borrower-timeline")

    with Session(console.engine) as session:
        worked = session.get_one(Case, case.id)
        assert (worked.status, worked.outcome) == (CaseStatus.resolved, CaseOutcome.plan_agreed)
        kept = session.scalars(select(CaseNote).where(CaseNote.case_id == case.id))
        assert {(n.call_outcome, n.officer_words) for n in kept} >= {
            (CallOutcome.promise_to_pay, "Will pay on Friday after the market"),
            (None, "Shop flooded in November"),
        }
        updates = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.case_id == case.id, OutboxMessage.purpose == "case_update")
            .order_by(OutboxMessage.id)
        )
        assert [(m.message_key, m.locale) for m in updates] == [
            ("cases.update.acknowledged", "sw"),
            ("cases.update.called", "sw"),
            ("cases.update.resolved", "sw"),
        ]
        acts = session.scalars(
            select(ContactEvent.decision)
            .where(ContactEvent.case_id == case.id, ContactEvent.rule.startswith("officer:"))
            .order_by(ContactEvent.id)
        )
        assert list(acts) == ["acknowledged", "called", "promise_to_pay", "noted", "resolved"]
