"""KPIs on a small portfolio whose every figure is worked out by hand in the comments.

The portfolio (``tests/api/kpi_portfolio.py``) is ten loans in two branches and two
currencies; its docstring lists each loan's schedule and payments.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from api.core.config import PromisePolicy
from api.kpis import service as kpis
from api.kpis.exceptions import UnknownBranch
from api.kpis.schemas import KpiReport
from tests.api.kpi_portfolio import AS_OF, build

D = Decimal


def _report(session: Session, branch: str | None) -> KpiReport:
    return kpis.kpi_report(
        session=session, as_of=AS_OF, branch=branch, policy=PromisePolicy(grace_days=2)
    )


def test_kpis_of_one_branch_match_the_hand_computed_figures(session: Session) -> None:
    p = build(session)
    report = _report(session, p.a.code)

    assert (report.period_start, report.period_end) == (date(2026, 11, 1), AS_OF)

    # PAR at the end of Nov 30 (Nairobi). Unpaid principal and days past due:
    # L1 1000 (0), L2 1000 (0), L3 6000 (Nov 30 - Sep 20 = 71), L4 250 + 500 = 750 (Nov 30 -
    # Jul 15 = 138), L5 3000 (0), L6 500 + 1000 = 1500 (Nov 30 - Nov 25 = 5), L9 400 (1);
    # L7 repaid, L8 written off. Gross = 13650.
    # PAR1 (> 1 day): L3 + L4 + L6 = 8250 -> 8250 / 13650 = 0.60439 -> 0.6044 (L9 is 1 day)
    # PAR30: L3 + L4 = 6750 -> 0.49451 -> 0.4945; PAR90: L4 = 750 -> 0.054945 -> 0.0549
    [par] = report.portfolio_at_risk
    assert (par.currency, par.loans, par.gross_principal) == ("KES", 7, D("13650.00"))
    assert (par.par1_principal, par.par30_principal, par.par90_principal) == (
        D("8250.00"),
        D("6750.00"),
        D("750.00"),
    )
    assert (par.par1, par.par30, par.par90) == (D("0.6044"), D("0.4945"), D("0.0549"))

    # Collection in November. Due in the period: L1 1100 (Nov 1), L7 1100 (Nov 5), L2 1100
    # (Nov 10), L3 2200 (Nov 20), L6 1100 (Nov 25), L9 440 (Nov 29) = 7040.
    # Paid by the due date: L1's 1100 (Nov 1 00:30 local); L7's came Nov 6 local: 0 -> 1100.
    # Paid by Nov 30: L1 1100 + L7 1100 + L2 1100 + L6 600 = 3900 (L3's came Dec 1 local).
    # Arrears at Nov 1 00:00: L2 1100 + L3 2200 + 2200 + L4 250 + 550 = 6300; collected in
    # November: L2's 1100.
    # On time 1100 / 7040 = 0.15625 -> 0.1562 (half even); with arrears (3900 + 1100) /
    # (7040 + 6300) = 5000 / 13340 = 0.37481 -> 0.3748.
    [collection] = report.collection
    assert collection.model_dump(exclude={"on_time_rate", "with_arrears_rate"}) == {
        "currency": "KES",
        "due": D("7040.00"),
        "paid_on_time": D("1100.00"),
        "paid_by_as_of": D("3900.00"),
        "arrears_at_start": D("6300.00"),
        "arrears_collected": D("1100.00"),
    }
    assert (collection.on_time_rate, collection.with_arrears_rate) == (D("0.1562"), D("0.3748"))

    # Promises whose date + 2 days fell in November: L2 kept (2200 on Nov 12), L7 kept within
    # the grace, L6 partially kept (600 of 1100 by Nov 28), L3 broken; L3's Nov 29 one ends in
    # December. Kept rate 2 / 4 = 0.5.
    assert report.promises.model_dump() == {
        "grace_days": 2,
        "kept": 2,
        "partially_kept": 1,
        "broken": 1,
        "kept_rate": D("0.5000"),
    }

    # Roll from Oct 31 to Nov 30, loans disbursed by Oct 31 (L5, L9 later; L8 written off):
    # L1 0 -> 0, L7 0 -> repaid, L6 0 -> 1-30 (5 days), L2 1-30 (21 days) -> 0,
    # L3 31-60 (41 days) -> 61-90 (71 days), L4 90+ (108 days) -> 90+ (138 days).
    roll = report.roll_rates
    assert (roll.from_date, roll.to_date) == (date(2026, 10, 31), AS_OF)
    assert roll.counts == {
        "0": {"0": 1, "repaid": 1, "1-30": 1},
        "1-30": {"0": 1},
        "31-60": {"61-90": 1},
        "61-90": {},
        "90+": {"90+": 1},
    }
    assert roll.rates["0"] == {"0": D("0.3333"), "repaid": D("0.3333"), "1-30": D("0.3333")}
    assert roll.rates["31-60"] == {"61-90": D("1.0000")}
    # Cure: past due at Oct 31 L2, L3, L4; current at Nov 30: L2 -> 1 / 3.
    assert (roll.past_due_at_start, roll.cured, roll.cure_rate) == (3, 1, D("0.3333"))

    # Reminders sent Nov 1-27 (Nov 30 - 3 days): L7, L2, L3, L6 (L9's of Nov 29 is too young,
    # L1's is October's). Converted: L2 (48 h), L6 (72 h exactly); L7's payment came after
    # 4 days 13 h. 2 / 4 = 0.5.
    conversion = report.reminder_conversion
    assert (conversion.sent_through, conversion.reminders, conversion.converted) == (
        date(2026, 11, 27),
        4,
        2,
    )
    assert conversion.rate == D("0.5000")

    # Reached in November (a campaign message sent): L1 (incentive), L7, L2, L3, L6, L9 = 6.
    # Opted out in November: L5 (blocked), L3 (in chat), L6 (consent only); L2's opt-out was in
    # October. Of the reached: L3 and L6 -> 2 / 6 (L5's only reminder failed: never reached).
    assert (report.opt_out.borrowers, report.opt_out.reached, report.opt_out.rate) == (
        2,
        6,
        D("0.3333"),
    )
    # Complained in November: L3 (a new case), L2 (a note on October's case) -> 2 / 6.
    assert (report.complaints.borrowers, report.complaints.rate) == (2, D("0.3333"))

    # Delivery in November: telegram sent L1 incentive, L7, L2, L3, L6 = 5, suppressed L4,
    # failed L5 (the rescheduled one is no outcome); whatsapp sent L9, delivered and read.
    assert [d.model_dump() for d in report.delivery] == [
        {
            "channel": "telegram",
            "outcomes": {"sent": 5, "suppressed": 1, "failed": 1},
            "receipts": {},
        },
        {"channel": "whatsapp", "outcomes": {"sent": 1}, "receipts": {"delivered": 1, "read": 1}},
    ]


def test_all_branches_report_each_currency_apart(session: Session) -> None:
    p = build(session)
    report = _report(session, None)

    # KES as above; UGX: L10 owes 200000 principal, Nov 30 - Oct 10 = 51 days past due:
    # PAR1 = PAR30 = 1, PAR90 = 0.
    kes, ugx = report.portfolio_at_risk
    assert (kes.currency, kes.gross_principal, kes.par30) == ("KES", D("13650.00"), D("0.4945"))
    assert (ugx.currency, ugx.gross_principal) == ("UGX", D("200000.00"))
    assert (ugx.par1, ugx.par30, ugx.par90) == (D("1.0000"), D("1.0000"), D("0.0000"))
    # UGX collection: Nov 10's 110000 due, nothing paid; 110000 in arrears at Nov 1.
    kes_c, ugx_c = report.collection
    assert kes_c.due == D("7040.00")
    assert (ugx_c.currency, ugx_c.due, ugx_c.arrears_at_start) == (
        "UGX",
        D("110000.00"),
        D("110000.00"),
    )
    assert (ugx_c.on_time_rate, ugx_c.with_arrears_rate) == (D("0.0000"), D("0.0000"))
    # L10 rolled from 1-30 (21 days) to 31-60 (51 days): 1-30 now has L2 -> 0 and L10 -> 31-60.
    assert report.roll_rates.counts["1-30"] == {"0": 1, "31-60": 1}
    assert report.roll_rates.cure_rate == D("0.2500")  # L2 of L2, L3, L4, L10
    # One more reminder (L10, unanswered): 2 / 5; one more borrower reached.
    assert (report.reminder_conversion.reminders, report.reminder_conversion.rate) == (
        5,
        D("0.4000"),
    )
    assert (report.opt_out.reached, report.opt_out.rate) == (7, D("0.2857"))
    assert p.b.code != p.a.code


def test_the_branch_filter_leaves_other_branches_out(session: Session) -> None:
    p = build(session)
    report = _report(session, p.b.code)

    [ugx] = report.portfolio_at_risk
    assert (ugx.currency, ugx.loans) == ("UGX", 1)
    assert report.promises.kept + report.promises.partially_kept + report.promises.broken == 0
    assert report.promises.kept_rate is None  # nothing to divide by
    assert (report.reminder_conversion.reminders, report.reminder_conversion.converted) == (1, 0)
    assert report.roll_rates.counts["1-30"] == {"31-60": 1}
    assert report.opt_out.model_dump() == {"borrowers": 0, "reached": 1, "rate": D("0.0000")}
    assert report.delivery[0].model_dump() == {
        "channel": "telegram",
        "outcomes": {"sent": 1},
        "receipts": {},
    }


def test_the_single_kpi_functions_answer_as_the_report(session: Session) -> None:
    p = build(session)
    report = _report(session, p.a.code)
    code = p.a.code

    assert kpis.portfolio_at_risk(session=session, as_of=AS_OF, branch=code) == (
        report.portfolio_at_risk
    )
    assert kpis.collection_rate(session=session, as_of=AS_OF, branch=code) == report.collection
    assert kpis.roll_rates(session=session, as_of=AS_OF, branch=code) == report.roll_rates
    assert (
        kpis.promise_outcomes(
            session=session, as_of=AS_OF, branch=code, policy=PromisePolicy(grace_days=2)
        )
        == report.promises
    )
    assert kpis.reminder_conversion(session=session, as_of=AS_OF, branch=code) == (
        report.reminder_conversion
    )
    assert kpis.opt_out_rate(session=session, as_of=AS_OF, branch=code) == report.opt_out
    assert kpis.complaint_rate(session=session, as_of=AS_OF, branch=code) == report.complaints
    assert kpis.delivery_outcomes(session=session, as_of=AS_OF, branch=code) == report.delivery


def test_a_shorter_grace_judges_the_late_promise_partially_kept(session: Session) -> None:
    p = build(session)
    # Without grace, L7's promise for Nov 4 ended at Nov 5 00:00 local and its 1100 came Nov 6:
    # broken; and L6's (Nov 26) and L2's (Nov 12) windows close before their payments change:
    # L6 paid 600 on Nov 27, after Nov 26 -> broken; L2 paid Nov 12 -> kept; L3 broken.
    # Nov 29's promise now ends Nov 29: counted, broken. Kept 1 of 5.
    outcomes = kpis.promise_outcomes(
        session=session, as_of=AS_OF, branch=p.a.code, policy=PromisePolicy(grace_days=0)
    )
    assert (outcomes.kept, outcomes.partially_kept, outcomes.broken) == (1, 0, 4)
    assert outcomes.kept_rate == D("0.2000")


def test_mid_month_as_of_rolls_the_last_complete_month(session: Session) -> None:
    p = build(session)
    # As of Nov 15: the period is Nov 1-15, the roll goes from Sep 30 to Oct 31.
    report = kpis.kpi_report(session=session, as_of=date(2026, 11, 15), branch=p.a.code)
    assert (report.period_start, report.period_end) == (date(2026, 11, 1), date(2026, 11, 15))
    assert (report.roll_rates.from_date, report.roll_rates.to_date) == (
        date(2026, 9, 30),
        date(2026, 10, 31),
    )
    # On Nov 15, L2's 2200 of Nov 12 is in, L6's 600 of Nov 27 is not: L6 is current (its Nov
    # 25 installment is not due yet). Unpaid principal: L1 1000, L2 1000, L3 6000 (56 days),
    # L4 750 (123 days), L5 3000, L6 2000, L7 0 (repaid Nov 6), L9 400 = 14150.
    [par] = report.portfolio_at_risk
    assert (par.gross_principal, par.par1_principal, par.par90_principal) == (
        D("14150.00"),
        D("6750.00"),
        D("750.00"),
    )


def test_an_unknown_branch_is_refused(session: Session) -> None:
    with pytest.raises(UnknownBranch):
        kpis.kpi_report(session=session, as_of=AS_OF, branch="NOPE")


def test_a_scope_narrows_the_report_to_its_branches(session: Session) -> None:
    p = build(session)
    within = frozenset({p.a.id})
    scoped = kpis.kpi_report(session=session, as_of=AS_OF, within=within)
    expected = kpis.kpi_report(session=session, as_of=AS_OF, branch=p.a.code)
    assert scoped.model_copy(update={"branch": p.a.code}) == expected
    with pytest.raises(UnknownBranch):
        kpis.kpi_report(session=session, as_of=AS_OF, branch=p.b.code, within=within)
