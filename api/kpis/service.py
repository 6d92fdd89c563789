"""Portfolio and contact KPIs at an as-of day, for one branch or all (issue 17).

Days are each branch's own calendar days (its IANA zone), as everywhere in the API: "the end of
the as-of day" is local midnight after it. The period of the flow KPIs (collection, promises,
conversion, opt-outs, complaints, delivery) is the as-of day's month up to and including the
as-of day.

Where a loan stood on a past day is rebuilt from the payment allocations of the payments
received before that day ended, spread over the loan's schedule as
:func:`api.loans.rules.allocate` spread them; the standing itself (outstanding, arrears, days
past due) comes from :func:`api.loans.rules.position`, never from a second copy of those rules.
Written-off loans are off the books: PAR, collection, roll and cure rates and reminder
conversion leave them out (the model records no write-off date, so a past as-of day leaves them
out too), while promises, opt-outs, complaints and delivery count what borrowers and channels
did whatever became of the loan. The model has no restructured loans (a restructure is only an
outcome an officer asks for on a case), so there is nothing to add for them.
A schedule changed by an import is read as it is now.

Right-party contact and SLA breaches are computed in :mod:`api.kpis.contacts`, the holdout
lift of reminders in :mod:`api.kpis.experiment`; :func:`kpi_report` gathers them.

Service functions take the session keyword-only and never write.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, union
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower, Consent
from api.branches.models import Branch
from api.cases.models import Case, CaseKind, CaseNote
from api.core.config import HoldoutPolicy, PromisePolicy, get_settings
from api.kpis import contacts, experiment
from api.kpis.book import Book, Periods, allocations, branch_loans, load_book, midnight
from api.kpis.exceptions import UnknownBranch
from api.kpis.experiment import InHoldout
from api.kpis.schemas import (
    BUCKETS,
    REPAID,
    BorrowerRate,
    Collection,
    DeliveryOutcomes,
    KpiReport,
    PortfolioAtRisk,
    PromiseOutcomes,
    ReminderConversion,
    RollRates,
)
from api.ledger.models import ContactEvent
from api.loans import rules
from api.loans.models import Loan
from api.payments.models import Payment
from api.promises import service as promise_service
from api.promises.models import PromiseStatus, PromiseToPay

ZERO = rules.ZERO
PAR_THRESHOLDS = (1, 30, 90)
CONVERSION_DAYS = 3
# The notifier's campaign purposes (notifier.rules.CAMPAIGN_PURPOSES; the API does not
# import the notifier): what "reached" means for opt-out and complaint rates.
CAMPAIGN_PURPOSES = ("reminder", "incentive")
# The deliverer's final decisions on a message (notifier/outcomes.py); "rescheduled" and
# "planned" are not outcomes.
DELIVERY_OUTCOMES = ("sent", "failed", "dead", "unknown", "suppressed")
RECEIPTS = ("delivered", "read", "failed")


# -- portfolio KPIs ------------------------------------------------------------------------


def _bucket(days_past_due: int) -> str:
    """The roll-rate bucket of a loan ``days_past_due`` late: 0, 1-30, 31-60, 61-90, 90+."""
    if days_past_due == 0:
        return "0"
    if days_past_due <= 30:
        return "1-30"
    if days_past_due <= 60:
        return "31-60"
    if days_past_due <= 90:
        return "61-90"
    return "90+"


def _par(books: Sequence[Book]) -> list[PortfolioAtRisk]:
    """PAR_N = unpaid principal of the loans more than N days past due at the end of the as-of
    day ÷ unpaid principal of every loan on the books then, per currency.

    Unpaid principal is :func:`api.loans.rules.principal_outstanding` summed over the schedule
    (due or not); days past due are :func:`api.loans.rules.days_past_due` (the oldest
    installment still owing, fees, interest or principal); a loan counts from its disbursement.
    """
    loans: Counter[str] = Counter()
    gross: dict[str, Decimal] = defaultdict(Decimal)
    at_risk: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    for book in books:
        for loan in book.loans:
            principal = sum(map(rules.principal_outstanding, loan.at["as_of"]), ZERO)
            if principal <= ZERO:
                continue
            late = book.position(loan, "as_of").days_past_due
            loans[loan.currency] += 1
            gross[loan.currency] += principal
            for days in PAR_THRESHOLDS:
                if late > days:
                    at_risk[loan.currency, days] += principal
    return [
        PortfolioAtRisk(
            currency=currency,
            loans=loans[currency],
            gross_principal=gross[currency],
            par1_principal=at_risk[currency, 1] + ZERO,
            par30_principal=at_risk[currency, 30] + ZERO,
            par90_principal=at_risk[currency, 90] + ZERO,
        )
        for currency in sorted(gross)
    ]


def _collection(session: Session, books: Sequence[Book], periods: Periods) -> list[Collection]:
    """Collection over the period, per currency (fees + interest + principal):

    - ``due``: what the installments due in the period owe in all;
    - ``paid_on_time``: what payments received by the end of each one's due date paid of them;
    - ``paid_by_as_of``: what payments received by the end of the as-of day paid of them;
    - ``arrears_at_start``: the arrears (:func:`api.loans.rules.position`) at the period's
      first moment, owed by installments due before it;
    - ``arrears_collected``: what payments received in the period paid of those.

    On time = paid_on_time ÷ due; with arrears = (paid_by_as_of + arrears_collected) ÷
    (due + arrears_at_start).
    """
    sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for book in books:
        in_period: dict[int, tuple[str, date]] = {}
        for loan in book.loans:
            figures = sums[loan.currency]
            figures["arrears_at_start"] += book.position(loan, "period_start").arrears
            schedule = zip(
                loan.installment_ids,
                loan.at["period_start"],
                loan.at["as_of"],
                strict=True,
            )
            for installment_id, before, after in schedule:
                paid_in_period = rules.total_paid(after) - rules.total_paid(before)
                if before.due_date < periods.period_start:
                    figures["arrears_collected"] += paid_in_period
                elif before.due_date <= periods.as_of:
                    figures["due"] += rules.total_due(after)
                    figures["paid_by_as_of"] += rules.total_paid(after)
                    in_period[installment_id] = (loan.currency, after.due_date)
        for installment_id, received_at, amount in allocations(session, in_period):
            currency, due_date = in_period[installment_id]
            if received_at < midnight(due_date + timedelta(days=1), book.branch.timezone):
                sums[currency]["paid_on_time"] += amount
    return [
        Collection(
            currency=currency,
            due=figures["due"] + ZERO,
            paid_on_time=figures["paid_on_time"] + ZERO,
            paid_by_as_of=figures["paid_by_as_of"] + ZERO,
            arrears_at_start=figures["arrears_at_start"] + ZERO,
            arrears_collected=figures["arrears_collected"] + ZERO,
        )
        for currency, figures in sorted(sums.items())
        if figures["due"] or figures["arrears_at_start"]
    ]


def _roll_rates(books: Sequence[Book], periods: Periods) -> RollRates:
    """Roll rates and cure between the two month-ends of :class:`Periods`, on the same loans:
    those with something outstanding at the first (disbursed by then), each in the bucket of
    its days past due then and at the second month-end (``repaid`` when nothing is left)."""
    counts: dict[str, dict[str, int]] = {start: {} for start in BUCKETS}
    for book in books:
        for loan in book.loans:
            if loan.disbursed_on > periods.roll_from:
                continue
            before = book.position(loan, "roll_from")
            if before.outstanding <= ZERO:
                continue
            after = book.position(loan, "roll_to")
            start = _bucket(before.days_past_due)
            end = REPAID if after.outstanding <= ZERO else _bucket(after.days_past_due)
            counts[start][end] = counts[start].get(end, 0) + 1
    return RollRates(from_date=periods.roll_from, to_date=periods.roll_to, counts=counts)


# -- promises and contacts -----------------------------------------------------------------


def _promises(
    session: Session, branches: Sequence[Branch], periods: Periods, policy: PromisePolicy
) -> PromiseOutcomes:
    """Promises (not cancelled) whose last day, the promised date + the promises service's
    grace days, fell in the period, judged as :func:`api.promises.service.judge` judges them
    with the payments that :func:`api.promises.service.paid_towards` counts: kept (paid in
    full), partially kept, broken. The stored status is not read, so the figure does not
    depend on when the promises were last evaluated."""
    grace = timedelta(days=policy.grace_days)
    outcomes: Counter[PromiseStatus] = Counter()
    for branch in branches:
        promises = list(
            session.scalars(
                select(PromiseToPay)
                .join(Borrower, Borrower.id == PromiseToPay.borrower_id)
                .where(
                    Borrower.branch_id == branch.id,
                    PromiseToPay.status != PromiseStatus.cancelled,
                    PromiseToPay.promised_date >= periods.period_start - grace,
                    PromiseToPay.promised_date <= periods.as_of - grace,
                )
            )
        )
        if not promises:
            continue
        payments: dict[int, list[Payment]] = defaultdict(list)
        for payment in session.scalars(
            select(Payment).where(
                Payment.loan_id.in_({p.loan_id for p in promises}),
                Payment.received_at >= min(p.created_at for p in promises),
            )
        ):
            payments[payment.loan_id].append(payment)
        for promise in promises:
            end = promise_service.window_end(
                promise.promised_date, branch.timezone, policy.grace_days
            )
            paid = promise_service.paid_towards(promise, payments[promise.loan_id], end)
            outcomes[promise_service.judge(amount=promise.amount, paid=paid, window_over=True)] += 1
    return PromiseOutcomes(
        grace_days=policy.grace_days,
        kept=outcomes[PromiseStatus.kept],
        partially_kept=outcomes[PromiseStatus.partially_kept],
        broken=outcomes[PromiseStatus.broken],
    )


def _span(branch: Branch, periods: Periods) -> tuple[datetime, datetime]:
    """The period as instants in ``branch``'s zone: [first moment, end of the as-of day)."""
    return (
        midnight(periods.period_start, branch.timezone),
        midnight(periods.as_of + timedelta(days=1), branch.timezone),
    )


def _conversion(
    session: Session, branches: Sequence[Branch], periods: Periods
) -> ReminderConversion:
    """Reminders the notifier sent in the period (ledger: outbound ``reminder`` ``sent`` with
    a loan) up to the end of the day ``CONVERSION_DAYS`` before the as-of day (a younger one
    has not had its whole chance yet), and how many were followed by a payment on their loan
    received after the reminder and no more than ``CONVERSION_DAYS`` × 24 hours later."""
    window = timedelta(days=CONVERSION_DAYS)
    last_day = periods.as_of - window
    reminders = converted = 0
    for branch in branches:
        start, end = _span(branch, periods)
        sent = list(
            session.execute(
                select(ContactEvent.loan_id, ContactEvent.at)
                .join(Loan, Loan.id == ContactEvent.loan_id)
                .join(Borrower, Borrower.id == Loan.borrower_id)
                .where(
                    branch_loans(branch),
                    ContactEvent.direction == "outbound",
                    ContactEvent.kind == "reminder",
                    ContactEvent.decision == "sent",
                    ContactEvent.at >= start,
                    ContactEvent.at < midnight(last_day + timedelta(days=1), branch.timezone),
                )
            )
        )
        if not sent:
            continue
        paid_at: dict[int, list[datetime]] = defaultdict(list)
        for paid_loan, received_at in session.execute(
            select(Payment.loan_id, Payment.received_at).where(
                Payment.loan_id.in_({loan_id for loan_id, _ in sent}),
                Payment.received_at > start,
                Payment.received_at < end,
            )
        ):
            paid_at[paid_loan].append(received_at)
        for reminded_loan, at in sent:
            assert reminded_loan is not None
            reminders += 1
            converted += any(at < p <= at + window for p in paid_at[reminded_loan])
    return ReminderConversion(
        window_days=CONVERSION_DAYS,
        sent_through=last_day,
        reminders=reminders,
        converted=converted,
    )


def _reached(branch: Branch, start: datetime, end: datetime) -> Select[int | None]:
    return (
        select(ContactEvent.borrower_id)
        .distinct()
        .join(Borrower, Borrower.id == ContactEvent.borrower_id)
        .where(
            Borrower.branch_id == branch.id,
            ContactEvent.direction == "outbound",
            ContactEvent.kind.in_(CAMPAIGN_PURPOSES),
            ContactEvent.decision == "sent",
            ContactEvent.at >= start,
            ContactEvent.at < end,
        )
    )


def _count(session: Session, query: Any) -> int:
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def _borrower_rate(
    session: Session,
    branches: Sequence[Branch],
    periods: Periods,
    borrowers: Callable[[Branch, datetime, datetime], Any],
) -> BorrowerRate:
    """The distinct borrowers that ``borrowers(branch, start, end)`` selects in each branch's
    period, over the borrowers reached there."""
    found = reached = 0
    for branch in branches:
        start, end = _span(branch, periods)
        found += _count(session, borrowers(branch, start, end))
        reached += _count(session, _reached(branch, start, end))
    return BorrowerRate(borrowers=found, reached=reached)


def _opted_out(branch: Branch, start: datetime, end: datetime) -> Any:
    in_ledger = (
        select(ContactEvent.borrower_id)
        .join(Borrower, Borrower.id == ContactEvent.borrower_id)
        .where(
            Borrower.branch_id == branch.id,
            ContactEvent.decision == "opted_out",
            ContactEvent.at >= start,
            ContactEvent.at < end,
        )
    )
    in_consents = (
        select(Consent.borrower_id)
        .join(Borrower, Borrower.id == Consent.borrower_id)
        .where(
            Borrower.branch_id == branch.id,
            Consent.opted_out_at >= start,
            Consent.opted_out_at < end,
        )
    )
    return union(in_ledger, in_consents)


def _complained(branch: Branch, start: datetime, end: datetime) -> Any:
    opened = (
        select(Case.borrower_id)
        .join(Borrower, Borrower.id == Case.borrower_id)
        .where(
            Borrower.branch_id == branch.id,
            Case.kind == CaseKind.complaint,
            Case.created_at >= start,
            Case.created_at < end,
        )
    )
    noted = (
        select(Case.borrower_id)
        .join(CaseNote, CaseNote.case_id == Case.id)
        .join(Borrower, Borrower.id == Case.borrower_id)
        .where(
            Borrower.branch_id == branch.id,
            CaseNote.kind == CaseKind.complaint,
            CaseNote.created_at >= start,
            CaseNote.created_at < end,
        )
    )
    return union(opened, noted)


def _opt_outs(session: Session, branches: Sequence[Branch], periods: Periods) -> BorrowerRate:
    """Borrowers who opted out of a channel in the period (a ledger ``opted_out`` event: said
    in chat, or a blocked bot; or a consent whose ``opted_out_at`` falls in the period, which
    also catches an opt-out said before the chat was verified) ÷ borrowers reached."""
    return _borrower_rate(session, branches, periods, _opted_out)


def _complaints(session: Session, branches: Sequence[Branch], periods: Periods) -> BorrowerRate:
    """Borrowers who complained in the period (a complaint case opened, or a complaint added
    as a note to a case they already had) ÷ borrowers reached."""
    return _borrower_rate(session, branches, periods, _complained)


def _delivery(
    session: Session, branches: Sequence[Branch], periods: Periods
) -> list[DeliveryOutcomes]:
    """Per channel, the ledger's outbound events of the period about the branch's borrowers:
    the deliverer's final decisions (``DELIVERY_OUTCOMES``) on every kind of message (reminders,
    incentives, case updates, officer alerts about a borrower) and the provider's receipts
    (``kind = status``). Events tied to no borrower or no channel are not counted: they have
    no branch, or never reached a channel (a case update with no verified chat)."""
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    receipts: dict[str, Counter[str]] = defaultdict(Counter)
    is_receipt = ContactEvent.kind == "status"
    for branch in branches:
        start, end = _span(branch, periods)
        rows = session.execute(
            select(ContactEvent.channel, is_receipt, ContactEvent.decision, func.count())
            .join(Borrower, Borrower.id == ContactEvent.borrower_id)
            .where(
                Borrower.branch_id == branch.id,
                ContactEvent.direction == "outbound",
                ContactEvent.channel.is_not(None),
                or_(
                    and_(is_receipt, ContactEvent.decision.in_(RECEIPTS)),
                    and_(~is_receipt, ContactEvent.decision.in_(DELIVERY_OUTCOMES)),
                ),
                ContactEvent.at >= start,
                ContactEvent.at < end,
            )
            .group_by(ContactEvent.channel, is_receipt, ContactEvent.decision)
        )
        for channel, receipt, decision, count in rows:
            assert channel is not None
            (receipts if receipt else outcomes)[channel][decision] += count
    return [
        DeliveryOutcomes(
            channel=channel, outcomes=dict(outcomes[channel]), receipts=dict(receipts[channel])
        )
        for channel in sorted(outcomes.keys() | receipts.keys())
    ]


# -- public functions ----------------------------------------------------------------------


def branches(
    session: Session, code: str | None, within: AbstractSet[int] | None = None
) -> list[Branch]:
    """The branch with ``code``, or every branch when ``code`` is None; only those whose ids
    are ``within`` when given (a manager's branches).

    Raises:
        UnknownBranch: no branch (``within``) has that code.
    """
    query = select(Branch).order_by(Branch.id)
    if within is not None:
        query = query.where(Branch.id.in_(sorted(within)))
    if code is None:
        return list(session.scalars(query))
    found = list(session.scalars(query.where(Branch.code == code)))
    if not found:
        raise UnknownBranch(code=code)
    return found


def _books(session: Session, as_of: date, branch: str | None) -> tuple[Periods, list[Book]]:
    periods = Periods.of(as_of)
    return periods, [load_book(session, b, periods) for b in branches(session, branch)]


def portfolio_at_risk(
    *, session: Session, as_of: date, branch: str | None = None
) -> list[PortfolioAtRisk]:
    """PAR1, PAR30 and PAR90 per currency at the end of ``as_of`` (see :func:`_par`)."""
    _periods, books = _books(session, as_of, branch)
    return _par(books)


def collection_rate(
    *, session: Session, as_of: date, branch: str | None = None
) -> list[Collection]:
    """Collection on time and with arrears per currency over ``as_of``'s month so far (see
    :func:`_collection`)."""
    periods, books = _books(session, as_of, branch)
    return _collection(session, books, periods)


def roll_rates(*, session: Session, as_of: date, branch: str | None = None) -> RollRates:
    """Roll rates and cure rate between the last two month-ends on or before ``as_of``."""
    periods, books = _books(session, as_of, branch)
    return _roll_rates(books, periods)


def promise_outcomes(
    *,
    session: Session,
    as_of: date,
    branch: str | None = None,
    policy: PromisePolicy | None = None,
) -> PromiseOutcomes:
    """Kept, partially kept and broken promises whose window ended in ``as_of``'s month so far
    (see :func:`_promises`)."""
    policy = policy or get_settings().promises
    return _promises(session, branches(session, branch), Periods.of(as_of), policy)


def reminder_conversion(
    *, session: Session, as_of: date, branch: str | None = None
) -> ReminderConversion:
    """Reminder → payment conversion within 3 days (see :func:`_conversion`)."""
    return _conversion(session, branches(session, branch), Periods.of(as_of))


def opt_out_rate(*, session: Session, as_of: date, branch: str | None = None) -> BorrowerRate:
    """Borrowers who opted out ÷ borrowers reached, over ``as_of``'s month so far."""
    return _opt_outs(session, branches(session, branch), Periods.of(as_of))


def complaint_rate(*, session: Session, as_of: date, branch: str | None = None) -> BorrowerRate:
    """Borrowers who complained ÷ borrowers reached, over ``as_of``'s month so far."""
    return _complaints(session, branches(session, branch), Periods.of(as_of))


def delivery_outcomes(
    *, session: Session, as_of: date, branch: str | None = None
) -> list[DeliveryOutcomes]:
    """Message outcomes and receipts per channel over ``as_of``'s month so far."""
    return _delivery(session, branches(session, branch), Periods.of(as_of))


def kpi_report(
    *,
    session: Session,
    as_of: date,
    branch: str | None = None,
    policy: PromisePolicy | None = None,
    within: AbstractSet[int] | None = None,
    holdout: HoldoutPolicy | None = None,
    arm: InHoldout | None = None,
) -> KpiReport:
    """Every KPI at ``as_of`` for the branch with code ``branch`` (all when None), reading the
    loan book once; only the branches whose ids are ``within`` when given. ``holdout`` and
    ``arm`` (which borrower ids are held out) default to the settings' holdout and its hash.

    Raises:
        UnknownBranch: no branch (``within``) has that code.
    """
    policy = policy or get_settings().promises
    holdout = holdout or get_settings().holdout
    periods = Periods.of(as_of)
    chosen = branches(session, branch, within)
    books = [load_book(session, b, periods) for b in chosen]
    return KpiReport(
        as_of=as_of,
        branch=branch,
        period_start=periods.period_start,
        period_end=periods.as_of,
        portfolio_at_risk=_par(books),
        collection=_collection(session, books, periods),
        promises=_promises(session, chosen, periods, policy),
        roll_rates=_roll_rates(books, periods),
        reminder_conversion=_conversion(session, chosen, periods),
        opt_out=_opt_outs(session, chosen, periods),
        complaints=_complaints(session, chosen, periods),
        delivery=_delivery(session, chosen, periods),
        right_party_contact=contacts.right_party_contact(session, chosen, periods),
        sla_breaches=contacts.sla_breaches(session, chosen, periods),
        holdout_lift=experiment.holdout_lift(session, books, periods, holdout, arm),
    )
