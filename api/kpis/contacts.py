"""Right-party contact in chat, and case SLA breaches per officer (issue 17).

Right-party contact (RPC). A call centre counts the attempts that reached the borrower; a chat
cannot confirm who holds the phone, so the closest record of "the borrower saw it" is used
(guide §2): a message the notifier *sent* to a borrower (an ``outbox_message`` row with status
``sent``, officers' alerts left out) counts as reached when, within :data:`RPC_WINDOW` of its
``sent_at``,

- the provider reported it **read** (a ledger receipt, ``kind = status``, ``decision = read``,
  carrying the row's ``provider_message_id``; WhatsApp only: Telegram has no read receipts), or
- the borrower **wrote back**: an inbound update stored by the gateway on the same chat
  (``inbox_message`` whose ``chat_key`` is the message's channel prefix and recipient), or an
  inbound ledger event of the borrower on any channel (a consent, language, verification or
  case request, which the ledger keeps after the inbox rows are purged by retention).

Only messages sent up to the end of the day before the as-of day count, so each had its
whole 24 hours by the end of the as-of day.

Officers' calls about the branch's borrowers in the same days add the channel ``phone``, the
guide's original definition: a call recorded from the console (ledger ``kind = call``) reached
the borrower when its outcome says someone answered (``api.cases.officers.REACHED``: answered,
promise to pay, dispute, paid, refused); no answer, unreachable and wrong number did not. Calls
have no read receipts: ``replied`` and ``reached`` are the answered ones.

SLA breaches. A case's ``sla_due_at`` is the deadline for an officer to take it (acknowledge,
call or resolve it; each sets ``acknowledged_at``): the rule the queue's badge and the escalation
apply. A case *breached* in the period when its deadline fell in the period and it had not been
taken by then (taken later, resolved later, or still open); ``still_open`` ones were not taken by
the end of the as-of day either. Cases count for their officer as assigned now.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower
from api.branches.models import Branch, Officer
from api.cases.models import Case
from api.cases.officers import REACHED
from api.inbox.models import InboxMessage
from api.kpis.book import Periods, midnight
from api.kpis.schemas import ChannelContacts, OfficerSla, RightPartyContact, SlaBreaches
from api.ledger.models import ContactEvent
from api.outbox.models import OutboxMessage, OutboxStatus

RPC_WINDOW = timedelta(hours=24)
# The gateway's inbox names a chat ``<prefix>:<chat id>`` (bot/app.py); the notifier sends to
# that chat id (Telegram: the private chat is the user's id; WhatsApp: the wa_id).
CHAT_PREFIXES = {"telegram": "tg", "whatsapp": "wa"}
_CHUNK = 1000
# Officers' calls (ledger ``kind = call``, recorded from the console) count as the channel
# "phone": the borrower was reached when the outcome says someone answered.
PHONE = "phone"
CALL_REACHED = frozenset(outcome.value for outcome in REACHED)


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def chat_key(channel: str, recipient: str) -> str:
    return f"{CHAT_PREFIXES.get(channel, channel)}:{recipient}"


def _sent(session: Session, branch: Branch, start: datetime, end: datetime) -> list[Any]:
    return list(
        session.execute(
            select(
                OutboxMessage.borrower_id,
                OutboxMessage.channel,
                OutboxMessage.recipient,
                OutboxMessage.provider_message_id,
                OutboxMessage.sent_at,
            )
            .join(Borrower, Borrower.id == OutboxMessage.borrower_id)
            .where(
                Borrower.branch_id == branch.id,
                OutboxMessage.officer_id.is_(None),
                OutboxMessage.purpose != "officer_alert",
                OutboxMessage.status == OutboxStatus.sent,
                OutboxMessage.sent_at >= start,
                OutboxMessage.sent_at < end,
            )
        )
    )


def _reads(session: Session, message_ids: Sequence[str]) -> dict[str, list[datetime]]:
    found: dict[str, list[datetime]] = defaultdict(list)
    for chunk in _chunks(message_ids):
        for message_id, at in session.execute(
            select(ContactEvent.external_message_id, ContactEvent.at).where(
                ContactEvent.kind == "status",
                ContactEvent.decision == "read",
                ContactEvent.external_message_id.in_(chunk),
            )
        ):
            if message_id is not None:
                found[message_id].append(at)
    return found


def _inbound_chats(
    session: Session, keys: Sequence[str], start: datetime, end: datetime
) -> dict[str, list[datetime]]:
    found: dict[str, list[datetime]] = defaultdict(list)
    for chunk in _chunks(keys):
        for key, at in session.execute(
            select(InboxMessage.chat_key, InboxMessage.received_at).where(
                InboxMessage.chat_key.in_(chunk),
                InboxMessage.received_at > start,
                InboxMessage.received_at <= end,
            )
        ):
            found[key].append(at)
    return found


def _inbound_events(
    session: Session, borrower_ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, list[datetime]]:
    found: dict[int, list[datetime]] = defaultdict(list)
    for chunk in _chunks(borrower_ids):
        for borrower_id, at in session.execute(
            select(ContactEvent.borrower_id, ContactEvent.at).where(
                ContactEvent.direction == "inbound",
                ContactEvent.borrower_id.in_(chunk),
                ContactEvent.at > start,
                ContactEvent.at <= end,
            )
        ):
            if borrower_id is not None:
                found[borrower_id].append(at)
    return found


def _within(sent_at: datetime, moments: Sequence[datetime]) -> bool:
    return any(sent_at < at <= sent_at + RPC_WINDOW for at in moments)


def _calls(session: Session, branch: Branch, start: datetime, end: datetime) -> list[Any]:
    """Officers' calls recorded in ``[start, end)`` about the branch's borrowers, per outcome."""
    return list(
        session.execute(
            select(ContactEvent.decision, func.count())
            .join(Borrower, Borrower.id == ContactEvent.borrower_id)
            .where(
                Borrower.branch_id == branch.id,
                ContactEvent.direction == "outbound",
                ContactEvent.kind == "call",
                ContactEvent.at >= start,
                ContactEvent.at < end,
            )
            .group_by(ContactEvent.decision)
        )
    )


def right_party_contact(
    session: Session, branches: Sequence[Branch], periods: Periods
) -> RightPartyContact:
    """Messages sent to borrowers from the period's start to the end of the day before the
    as-of day, and those read or replied to within 24 hours, per channel; officers' calls of
    those days as the channel ``phone`` (module docstring)."""
    last_day = periods.as_of - timedelta(days=1)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for branch in branches:
        start = midnight(periods.period_start, branch.timezone)
        end = midnight(periods.as_of, branch.timezone)
        for outcome, calls in _calls(session, branch, start, end):
            tally = counts[PHONE]
            tally["sent"] += calls
            if outcome in CALL_REACHED:
                tally["replied"] += calls
                tally["reached"] += calls
        sent = _sent(session, branch, start, end)
        if not sent:
            continue
        reads = _reads(
            session, sorted({r.provider_message_id for r in sent if r.provider_message_id})
        )
        chats = _inbound_chats(
            session,
            sorted({chat_key(r.channel, r.recipient) for r in sent}),
            start,
            end + RPC_WINDOW,
        )
        events = _inbound_events(
            session, sorted({r.borrower_id for r in sent}), start, end + RPC_WINDOW
        )
        for row in sent:
            read = _within(row.sent_at, reads.get(row.provider_message_id or "", []))
            replied = _within(row.sent_at, chats.get(chat_key(row.channel, row.recipient), []))
            replied = replied or _within(row.sent_at, events.get(row.borrower_id, []))
            tally = counts[row.channel]
            tally["sent"] += 1
            tally["read"] += read
            tally["replied"] += replied
            tally["reached"] += read or replied
    return RightPartyContact(
        window_hours=int(RPC_WINDOW.total_seconds() // 3600),
        sent_through=last_day,
        channels=[
            ChannelContacts(
                channel=channel,
                sent=tally["sent"],
                read=tally["read"],
                replied=tally["replied"],
                reached=tally["reached"],
            )
            for channel, tally in sorted(counts.items())
        ],
    )


def sla_breaches(session: Session, branches: Sequence[Branch], periods: Periods) -> SlaBreaches:
    """Per assigned officer, the cases whose SLA deadline fell in the period, those not taken
    by it, and those still not taken at the end of the as-of day (module docstring)."""
    due: Counter[int | None] = Counter()
    breached: Counter[int | None] = Counter()
    still_open: Counter[int | None] = Counter()
    names: dict[int | None, str | None] = {None: None}
    for branch in branches:
        start = midnight(periods.period_start, branch.timezone)
        end = midnight(periods.as_of + timedelta(days=1), branch.timezone)
        for officer_id, name, deadline, taken in session.execute(
            select(Case.assigned_officer_id, Officer.name, Case.sla_due_at, Case.acknowledged_at)
            .join(Borrower, Borrower.id == Case.borrower_id)
            .outerjoin(Officer, Officer.id == Case.assigned_officer_id)
            .where(
                Borrower.branch_id == branch.id,
                Case.sla_due_at >= start,
                Case.sla_due_at < end,
            )
        ):
            names[officer_id] = name
            due[officer_id] += 1
            if taken is None or taken > deadline:
                breached[officer_id] += 1
                still_open[officer_id] += taken is None or taken >= end
    ordered = sorted(due, key=lambda o: (o is None, names[o] or "", o or 0))
    return SlaBreaches(
        officers=[
            OfficerSla(
                officer_id=officer_id,
                officer=names[officer_id],
                due=due[officer_id],
                breached=breached[officer_id],
                still_open=still_open[officer_id],
            )
            for officer_id in ordered
        ]
    )
