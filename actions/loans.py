"""Account questions: balance, next payment, schedule, past payments, how to pay, payment made."""

from __future__ import annotations

from typing import Any

from rasa_sdk.events import EventType

from actions.common import language, line, local_date, today
from actions.loan_api import Loan, request_key
from actions.parsing import parse_amount, parse_date
from actions.requests import RequestAction, RequestContext, request
from i18n import day, money, nested

PAYMENT_HISTORY_LIMIT = 5


async def _loans(context: RequestContext) -> list[Loan]:
    """The borrower's loans that still matter (active first); says so when there are none."""
    loans = await context.api.loans(context.who.channel, context.who.user)
    current = [loan for loan in loans if loan.status in ("active", "defaulted")] or loans
    if not current:
        context.say("conv.no_loans")
    return current


@request("balance")
async def show_balance(context: RequestContext) -> list[EventType]:
    for loan in await _loans(context):
        args: dict[str, Any] = {
            "reference": loan.account_reference,
            "outstanding": money(loan.outstanding, loan.currency),
        }
        # "How much do I pay?" asks as often for the next instalment as for the total: both,
        # in one message.
        lines = []
        if loan.next_installment is not None:
            lines.append(
                line(
                    "conv.balance_next_payment",
                    amount=money(loan.next_installment.amount, loan.currency),
                    date=day(loan.next_installment.due_date),
                )
            )
        if loan.arrears > 0:
            context.say(
                "conv.balance_arrears",
                arrears=money(loan.arrears, loan.currency),
                count=loan.days_past_due,
                lines=lines,
                **args,
            )
        else:
            context.say("conv.balance", lines=lines, **args)
    return []


@request("next_due")
async def show_next_due(context: RequestContext) -> list[EventType]:
    for loan in await _loans(context):
        if loan.next_installment is None:
            context.say("conv.next_due_none", reference=loan.account_reference)
            continue
        context.say(
            "conv.next_due",
            reference=loan.account_reference,
            amount=money(loan.next_installment.amount, loan.currency),
            date=day(loan.next_installment.due_date),
        )
    return []


@request("schedule")
async def show_schedule(context: RequestContext) -> list[EventType]:
    for loan in await _loans(context):
        installments = await context.api.schedule(
            context.who.channel, context.who.user, loan.loan_id
        )
        lines = [
            line(
                "conv.schedule_line",
                seq=item.seq,
                date=day(item.due_date),
                amount=money(item.amount_due, loan.currency),
                status=nested(f"conv.installment.{item.status}"),
            )
            for item in installments
        ]
        context.say("conv.schedule_header", reference=loan.account_reference, lines=lines)
    return []


@request("payment_history")
async def show_payment_history(context: RequestContext) -> list[EventType]:
    for loan in await _loans(context):
        payments = await context.api.payments(
            context.who.channel, context.who.user, loan.loan_id, limit=PAYMENT_HISTORY_LIMIT
        )
        if not payments:
            context.say("conv.payments_none", reference=loan.account_reference)
            continue
        lines = [
            line(
                "conv.payment_line",
                date=day(local_date(payment.received_at, context.tracker)),
                amount=money(payment.amount, payment.currency),
            )
            for payment in payments
        ]
        context.say("conv.payments_header", reference=loan.account_reference, lines=lines)
    return []


@request("how_to_pay")
async def show_payment_instructions(context: RequestContext) -> list[EventType]:
    info = await context.api.payment_instructions(context.who.channel, context.who.user)
    reference = info.account_reference
    lines = []
    for channel in info.mobile_money:
        kind = "conv.pay.till" if channel.get("type") == "till" else "conv.pay.paybill"
        lines.append(
            line(
                kind,
                provider=str(channel.get("provider", "")),
                number=str(channel.get("number", "")),
                reference=reference,
            )
        )
    if info.bank:
        lines.append(
            line(
                "conv.pay.bank",
                bank=str(info.bank.get("name") or info.bank.get("bank") or ""),
                account=str(info.bank.get("account") or ""),
                reference=reference,
            )
        )
    for agent in info.agents:
        lines.append(
            line(
                "conv.pay.agent",
                name=str(agent.get("name", "")),
                location=str(agent.get("location", "")),
            )
        )
    context.say("conv.how_to_pay", reference=reference, lines=lines)
    return []


@request("report_payment")
async def report_payment(context: RequestContext) -> list[EventType]:
    locale = language(context.tracker)
    parsed_amount = parse_amount(context.text, locale, None)
    parsed_date = parse_date(context.text, locale, today(context.tracker))
    amount = parsed_amount.value if parsed_amount else None
    paid_on = parsed_date.value if parsed_date else None
    if paid_on is not None and paid_on > today(context.tracker):
        paid_on = None
    claim = await context.api.claim_payment(
        context.who.channel,
        context.who.user,
        amount=amount,
        paid_on=paid_on,
        idempotency_key=request_key(context.tracker, "payment_claim"),
    )
    if claim.found and claim.payment is not None:
        context.say(
            "conv.payment_found",
            amount=money(claim.payment.amount, claim.payment.currency),
            date=day(local_date(claim.payment.received_at, context.tracker)),
        )
    else:
        context.say(
            "conv.payment_not_found",
            count=claim.expected_within_hours or 24,
            reference=claim.case_reference or "",
        )
    return []


class ActionShowBalance(RequestAction):
    def name(self) -> str:
        return "action_show_balance"

    def request_name(self) -> str:
        return "balance"


class ActionShowNextDue(RequestAction):
    def name(self) -> str:
        return "action_show_next_due"

    def request_name(self) -> str:
        return "next_due"


class ActionShowSchedule(RequestAction):
    def name(self) -> str:
        return "action_show_schedule"

    def request_name(self) -> str:
        return "schedule"


class ActionShowPaymentHistory(RequestAction):
    def name(self) -> str:
        return "action_show_payment_history"

    def request_name(self) -> str:
        return "payment_history"


class ActionShowPaymentInstructions(RequestAction):
    def name(self) -> str:
        return "action_show_payment_instructions"

    def request_name(self) -> str:
        return "how_to_pay"


class ActionReportPayment(RequestAction):
    def name(self) -> str:
        return "action_report_payment"

    def request_name(self) -> str:
        return "report_payment"
