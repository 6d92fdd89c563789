"""``kopa seed``: the synthetic portfolio is reproducible, realistic and self-consistent."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import phonenumbers
import pytest
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api.core.db import build_engine
from api.models import (
    Borrower,
    BorrowerGroup,
    Branch,
    Case,
    Consent,
    ContactEvent,
    Installment,
    Loan,
    Officer,
    Payment,
    PaymentAllocation,
    PromiseToPay,
)
from kopa.cli import app
from portfolio.synthetic.seed import AlreadySeeded, seed_portfolio
from tests.data.helpers_data import PEPPER, dump

TODAY = date(2026, 11, 29)
ZERO = Decimal("0.00")
COUNTRY = {  # country: (currency, time zones, languages)
    "KE": ("KES", {"Africa/Nairobi"}, {"sw", "en"}),
    "SN": ("XOF", {"Africa/Dakar"}, {"fr"}),
    "CI": ("XOF", {"Africa/Abidjan"}, {"fr"}),
    "MX": ("MXN", {"America/Mexico_City"}, {"es"}),
}


def _seed(url: str, *, seed: int, borrowers: int = 300) -> None:
    seed_portfolio(url, borrowers=borrowers, seed=seed, today=TODAY, pepper=PEPPER)


def test_same_seed_and_day_give_identical_rows(new_database: Callable[[str], str]) -> None:
    first, second, other = new_database("sqlite"), new_database("sqlite"), new_database("sqlite")
    _seed(first, seed=11)
    _seed(second, seed=11)
    _seed(other, seed=12)

    a, b, c = dump(first), dump(second), dump(other)
    assert a == b
    assert len(a["borrower"]) == 300
    # Another seed draws other people, loans and histories (the branch list is fixed).
    assert a["branch"] == c["branch"]
    assert {r[6] for r in a["borrower"]} != {r[6] for r in c["borrower"]}
    assert [r[6] for r in a["loan"]] != [r[6] for r in c["loan"]]


def test_seed_cli_shows_progress_and_refuses_a_second_portfolio(
    new_database: Callable[[str], str],
) -> None:
    url = new_database("sqlite")
    runner = CliRunner()
    args = ["seed", "--borrowers", "120", "--seed", "3", "--today", "2026-11-29"]
    result = runner.invoke(app, [*args, "--database-url", url])
    assert result.exit_code == 0, result.output
    assert "120/120" in result.output
    assert "loan_installment" in result.output

    again = runner.invoke(app, [*args, "--database-url", url])
    assert again.exit_code == 1
    assert "already holds a synthetic portfolio" in again.output
    with pytest.raises(AlreadySeeded):
        _seed(url, seed=4)


def test_seeded_portfolio_is_consistent(fresh_db_url: str) -> None:
    _seed(fresh_db_url, seed=5)
    engine = build_engine(fresh_db_url)
    with Session(engine) as s:
        branches = {b.id: b for b in s.scalars(select(Branch))}
        borrowers = {b.id: b for b in s.scalars(select(Borrower))}
        loans = {loan.id: loan for loan in s.scalars(select(Loan))}
        installments = list(s.scalars(select(Installment)))
        payments = {p.id: p for p in s.scalars(select(Payment))}
        allocations = list(s.scalars(select(PaymentAllocation)))
        promises = list(s.scalars(select(PromiseToPay)))
        cases = list(s.scalars(select(Case)))
        consents = list(s.scalars(select(Consent)))
        officers = list(s.scalars(select(Officer)))
        groups = list(s.scalars(select(BorrowerGroup)))
        events = list(s.scalars(select(ContactEvent)))
    engine.dispose()
    end_of_today = datetime.combine(TODAY + timedelta(days=1), time(), UTC)

    # Branches: several countries, each with its currency, zone and payment instructions.
    assert {b.country for b in branches.values()} >= {"KE", "SN", "MX"}
    for branch in branches.values():
        currency, zones, _ = COUNTRY[branch.country]
        assert (branch.currency, branch.timezone in zones) == (currency, True)
        instructions = branch.payment_instructions
        assert instructions["mobile_money"] or instructions["bank"]
        assert instructions["agents"]
    for branch_id in branches:
        staff = Counter(str(o.role) for o in officers if o.branch_id == branch_id)
        assert staff["manager"] == 1 and staff["officer"] >= 2
    assert all(o.channel in {"telegram", "whatsapp"} and o.chat_id for o in officers)
    assert all(0 <= g.meeting_weekday <= 4 for g in groups)

    # Borrowers: valid E.164 phones of their branch's country, a language spoken there.
    for borrower in borrowers.values():
        branch = branches[borrower.branch_id]
        number = phonenumbers.parse(borrower.phone_e164)
        assert phonenumbers.is_valid_number(number), borrower.phone_e164
        assert phonenumbers.region_code_for_number(number) == branch.country
        assert borrower.preferred_language in COUNTRY[branch.country][2]
        assert len(borrower.dob_hash) == 64 and len(borrower.national_id_last4_hash) == 64
    assert len({b.phone_e164 for b in borrowers.values()}) == len(borrowers)
    assert {b.preferred_language for b in borrowers.values()} == {"sw", "en", "fr", "es"}

    # Money: payments = their allocations = what the installments show as paid.
    paid: dict[int, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO])
    by_payment: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for a in allocations:
        paid[a.installment_id][0] += a.fees
        paid[a.installment_id][1] += a.interest
        paid[a.installment_id][2] += a.principal
        by_payment[a.payment_id] += a.fees + a.interest + a.principal
    for payment in payments.values():
        loan = loans[payment.loan_id]
        assert by_payment[payment.id] == payment.amount
        assert payment.currency == loan.currency
        assert payment.received_at.date() <= TODAY
    assert len({p.external_reference for p in payments.values()}) == len(payments)
    for inst in installments:
        assert paid[inst.id] == [inst.fees_paid, inst.interest_paid, inst.principal_paid]
        if inst.total_paid == inst.total_due:
            assert (inst.status, inst.paid_on is not None) == ("paid", True)
        else:
            assert inst.status == ("partial" if inst.total_paid else "pending")
            assert inst.total_paid < inst.total_due
    for loan in loans.values():
        branch = branches[borrowers[loan.borrower_id].branch_id]
        assert loan.currency == branch.currency

    # Histories: on time, late, defaulted, cured; weekly and monthly; group and individual.
    overdue = {i.loan_id for i in installments if i.due_date < TODAY and i.total_paid < i.total_due}
    statuses = Counter(str(loan.status) for loan in loans.values())
    assert statuses["active"] and statuses["closed"] and statuses["defaulted"]
    assert any(loans[i].status == "active" for i in overdue), "some active loans are in arrears"
    assert {str(loan.frequency) for loan in loans.values()} == {"weekly", "monthly"}
    assert any(loan.group_id for loan in loans.values())
    assert any(loan.group_id is None for loan in loans.values())
    assert Counter(str(p.status) for p in promises).keys() >= {"kept", "broken", "pending"}
    for promise in promises:
        assert promise.currency == loans[promise.loan_id].currency
        if promise.status == "kept":
            assert promise.amount_paid >= promise.amount
        if promise.status == "broken":
            assert promise.amount_paid == ZERO and promise.promised_date < TODAY

    # A few open hardship cases, and their loans pause collection; older ones, from shocks
    # earlier in the history, were resolved weeks after they opened.
    assert {str(case.status) for case in cases} == {"open", "resolved"}
    for case in cases:
        assert case.kind == "hardship" and case.loan_id is not None
        assert case.sla_due_at > case.created_at
        if case.status == "open":
            assert loans[case.loan_id].collection_paused and case.resolved_at is None
        else:
            assert case.created_at < case.resolved_at < end_of_today and case.outcome is not None
    unresolved = Counter(case.borrower_id for case in cases if case.status == "open")
    assert max(unresolved.values()) == 1

    # The contact ledger: reminders the day after a missed due day, and the borrowers' replies.
    reminders = [e for e in events if e.direction == "outbound"]
    replies = [e for e in events if e.direction == "inbound"]
    assert reminders and replies
    assert {(e.kind, e.decision) for e in reminders} == {("reminder", "sent")}
    assert {(e.kind, e.decision) for e in replies} == {("chat", "received")}
    assert all(
        loans[e.loan_id].borrower_id == e.borrower_id and e.at < end_of_today for e in events
    )

    # Consent: most opted in, some opted out.
    opted_in = {c.borrower_id for c in consents if c.opted_in}
    opted_out = [c for c in consents if not c.opted_in]
    assert len(opted_in) > 0.8 * len(borrowers)
    assert opted_out and all(c.opted_out_at is not None for c in opted_out)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_indexing_after_the_load_gives_the_same_database(
    kind: str, new_database: Callable[[str], str]
) -> None:
    """Large seeds drop plain indexes and rebuild them at the end: same rows, same indexes."""
    plain, deferred = new_database(kind), new_database(kind)
    seed_portfolio(plain, borrowers=120, seed=8, today=TODAY, pepper=PEPPER, defer_indexes=False)
    seed_portfolio(deferred, borrowers=120, seed=8, today=TODAY, pepper=PEPPER, defer_indexes=True)

    def indexes(url: str) -> dict[str, list[Any]]:
        engine = build_engine(url)
        found = {
            table: sorted(inspect(engine).get_indexes(table), key=lambda i: str(i["name"]))
            for table in ("loan_installment", "payment", "payment_allocation", "borrower")
        }
        engine.dispose()
        return found

    assert indexes(deferred) == indexes(plain)
    assert any(
        i["name"] == "ix_loan_installment_due_date" for i in indexes(plain)["loan_installment"]
    )
    assert dump(deferred) == dump(plain)
