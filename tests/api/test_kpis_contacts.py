"""Right-party contact, SLA breaches per officer and the causal lift of reminders, on the KPI
portfolio (``tests/api/kpi_portfolio.py``) with the messages and cases of
``tests/api/kpi_contacts.py``; every figure worked out by hand in the comments."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from api.borrowers.holdout import in_holdout
from api.core.config import HoldoutPolicy, PromisePolicy
from api.kpis import service as kpis
from api.kpis.schemas import KpiReport
from tests.api.kpi_contacts import add_cases, add_messages
from tests.api.kpi_portfolio import AS_OF, Portfolio, build

D = Decimal
HALF = HoldoutPolicy(share=0.5, salt="kpi-test")


def _report(
    session: Session,
    branch: str | None,
    *,
    held: set[int] | None = None,
    holdout: HoldoutPolicy = HALF,
) -> KpiReport:
    return kpis.kpi_report(
        session=session,
        as_of=AS_OF,
        branch=branch,
        policy=PromisePolicy(grace_days=2),
        holdout=holdout,
        arm=None if held is None else held.__contains__,
    )


def _borrowers(p: Portfolio, *names: str) -> set[int]:
    return {p.loans[name].borrower_id for name in names}


def test_right_party_contact_counts_messages_read_or_answered_within_24_hours(
    session: Session,
) -> None:
    p = build(session)
    add_messages(session, p)

    rpc = _report(session, p.a.code).right_party_contact

    # Sent Nov 1-29 (Nairobi): telegram M1, M2; whatsapp M3, M4, M5.
    # Telegram: M1 answered after 6 h; M2's answer came after 25 h -> 1 of 2, nothing read.
    # WhatsApp: read within 24 h M3 (3 h), M5 (30 min); M4's receipt came after 25 h.
    # Answered: M3 (the opt-out 24 h later exactly), M4 (a case request after 11 h), M5 (1 h).
    # Reached 3 of 3. Phone: L2's calls, one answered -> 1 of 2 (L3's of Nov 30 is too late).
    # In all 5 of 7 = 0.71428 -> 0.7143.
    assert (rpc.window_hours, rpc.sent_through) == (24, date(2026, 11, 29))
    assert [c.model_dump() for c in rpc.channels] == [
        {"channel": "phone", "sent": 2, "read": 0, "replied": 1, "reached": 1, "rate": D("0.5")},
        {"channel": "telegram", "sent": 2, "read": 0, "replied": 1, "reached": 1, "rate": D("0.5")},
        {"channel": "whatsapp", "sent": 3, "read": 2, "replied": 3, "reached": 3, "rate": D("1")},
    ]
    assert (rpc.sent, rpc.reached, rpc.rate) == (7, 5, D("0.7143"))


def test_right_party_contact_of_all_branches_adds_branch_b(session: Session) -> None:
    p = build(session)
    add_messages(session, p)

    rpc = _report(session, None).right_party_contact

    # Branch B's M10 (telegram, unanswered): telegram 1 of 3; in all 5 of 8.
    _phone, telegram, _whatsapp = rpc.channels
    assert (telegram.sent, telegram.reached, telegram.rate) == (3, 1, D("0.3333"))
    assert (rpc.sent, rpc.reached, rpc.rate) == (8, 5, D("0.6250"))
    only_b = _report(session, p.b.code).right_party_contact
    assert (only_b.sent, only_b.reached, only_b.rate) == (1, 0, D("0.0000"))


def test_sla_breaches_are_counted_per_assigned_officer(session: Session) -> None:
    p = build(session)
    officers = add_cases(session, p)

    sla = _report(session, p.a.code).sla_breaches

    # Amina: 3 deadlines in November; L3 taken a day late and L6 never taken -> 2, L6 still open.
    # Baraka: L7 (resolved 5 days late) and L4 (due Nov 30 13:00 local, taken Dec 1: still
    # open at the end of Nov 30) -> 2 of 2; L9's deadline is Dec 1 in Nairobi, L1's October.
    # Unassigned: the portfolio's L1 hardship and L3 complaint, never taken -> 2 of 2.
    assert [o.model_dump() for o in sla.officers] == [
        {
            "officer_id": officers["Amina"].id,
            "officer": "Amina Njeri",
            "due": 3,
            "breached": 2,
            "still_open": 1,
            "rate": D("0.6667"),
        },
        {
            "officer_id": officers["Baraka"].id,
            "officer": "Baraka Otieno",
            "due": 2,
            "breached": 2,
            "still_open": 1,
            "rate": D("1.0000"),
        },
        {
            "officer_id": None,
            "officer": None,
            "due": 2,
            "breached": 2,
            "still_open": 2,
            "rate": D("1.0000"),
        },
    ]
    assert (sla.due, sla.breached) == (7, 6)
    # Branch B: Chausiku took L10's case in time.
    [chausiku] = _report(session, p.b.code).sla_breaches.officers
    assert (chausiku.officer, chausiku.due, chausiku.breached, chausiku.rate) == (
        "Chausiku Achieng",
        1,
        0,
        D("0.0000"),
    )


def test_a_mid_month_as_of_day_counts_the_deadlines_up_to_it(session: Session) -> None:
    p = build(session)
    add_cases(session, p)

    sla = kpis.kpi_report(session=session, as_of=date(2026, 11, 12), branch=p.a.code)

    # Up to Nov 12: Amina's L2 (in time) and L3 (due Nov 12 09:00, taken Nov 13: breached and,
    # at the end of Nov 12, still open); the portfolio's L1 hardship of Nov 2.
    [amina, unassigned] = sla.sla_breaches.officers
    assert (amina.due, amina.breached, amina.still_open) == (2, 1, 1)
    assert (unassigned.due, unassigned.breached) == (1, 1)


def test_holdout_lift_compares_on_time_payment_of_the_two_arms(session: Session) -> None:
    p = build(session)
    held = _borrowers(p, "L3", "L6", "L9")

    lift = _report(session, p.a.code, held=held).holdout_lift

    # Installments due Nov 1-30 (L8 is written off, L5's first is Dec 5):
    # reminded L1 (Nov 1, paid on time), L7 (Nov 5, paid Nov 6 local), L2 (Nov 10, paid Nov 12)
    # -> 1 of 3; holdout L3 (Nov 20, unpaid), L6 (Nov 25, 600 of 1100), L9 (Nov 29) -> 0 of 3.
    # Wilson 95 %: 1/3 -> centre (1/3 + z²/6) / (1 + z²/3) = 0.4269, half-width
    # z / (1 + z²/3) · sqrt(2/27 + z²/36) = 0.3654 -> [0.0615, 0.7923]; 0/3 -> [0, 0.5615].
    # Lift 0.3333; Newcombe: 0.3333 - sqrt(0.2718² + 0.5615²) = -0.2905,
    # 0.3333 + sqrt(0.4590² + 0²) = 0.7923: with 3 installments an arm, nothing is known.
    assert (lift.share, lift.counted_from) == (0.5, date(2026, 11, 1))
    assert lift.reminded.model_dump() == {
        "installments": 3,
        "on_time": 1,
        "rate": D("0.3333"),
        "low": D("0.0615"),
        "high": D("0.7923"),
    }
    assert lift.holdout.model_dump() == {
        "installments": 3,
        "on_time": 0,
        "rate": D("0.0000"),
        "low": D("0.0000"),
        "high": D("0.5615"),
    }
    assert (lift.lift, lift.lift_low, lift.lift_high) == (D("0.3333"), D("-0.2905"), D("0.7923"))


def test_holdout_lift_counts_from_the_experiments_start(session: Session) -> None:
    p = build(session)
    started = HoldoutPolicy(share=0.5, salt="kpi-test", started_on=date(2026, 11, 15))

    lift = _report(
        session, p.a.code, held=_borrowers(p, "L3", "L6", "L9"), holdout=started
    ).holdout_lift

    # From Nov 15 only L3, L6 and L9 fall due, all in the holdout: no reminded arm to compare.
    assert lift.counted_from == date(2026, 11, 15)
    assert (lift.reminded.installments, lift.holdout.installments) == (0, 3)
    assert (lift.reminded.rate, lift.lift, lift.lift_low) == (None, None, None)


def test_holdout_lift_splits_borrowers_by_the_configured_hash(session: Session) -> None:
    p = build(session)
    # The six installments of November and whether each was paid on time (above).
    on_time = {"L1": True, "L7": False, "L2": False, "L3": False, "L6": False, "L9": False}
    held = {n for n in on_time if in_holdout(p.loans[n].borrower_id, HALF)}

    lift = _report(session, p.a.code).holdout_lift

    assert lift.holdout.installments == len(held)
    assert lift.holdout.on_time == sum(on_time[n] for n in held)
    assert lift.reminded.installments == 6 - len(held)
    assert lift.reminded.on_time == sum(on_time[n] for n in set(on_time) - held)
    # With no holdout configured, everyone is reminded.
    off = _report(session, p.a.code, holdout=HoldoutPolicy(share=0.0)).holdout_lift
    assert (off.reminded.installments, off.holdout.installments, off.lift) == (6, 0, None)
