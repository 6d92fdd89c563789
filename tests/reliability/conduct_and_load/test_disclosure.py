"""P-5: no third party hears of the debt."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from api.borrowers.models import ChannelIdentity
from api.outbox.models import OutboxStatus
from bot.channels.telegram import TelegramGateway
from bot.channels.whatsapp import WhatsAppGateway
from bot.fakes.runner import ServerThread
from bot.fakes.telegram import FakeTelegram
from bot.fakes.whatsapp import FakeWhatsApp
from i18n import render
from notifier.planner import Planner
from notifier.render import COMPLAINT_KEY, LIMITED_KEY, OPT_OUT_KEY
from tests.notifier import notify_factory as f
from tests.notifier.conftest import Bound
from tests.reliability.conduct_and_load.pipeline import (
    AT,
    TODAY,
    fast_deliverer,
    rows_where,
    settle_delivery,
)


async def test_P5_unverified_channels_get_limited_content_and_no_one_else_hears_of_the_debt(
    bound: Bound,
    fake_tg: tuple[FakeTelegram, ServerThread],
    fake_wa: tuple[FakeWhatsApp, ServerThread],
    telegram: TelegramGateway,
    whatsapp: WhatsAppGateway,
) -> None:
    """P-5 on PostgreSQL, delivered through the real gateways to both fake providers:

    - a borrower reachable only on the WhatsApp number on file (opted in, never verified in
      chat) gets the limited template (no parameters: no amount, account or date);
    - a borrower whose Telegram chat, after the reminder was planned, was verified by someone
      else (a handed-on phone) gets the limited text there;
    - the members of a borrower's solidarity group, all on verified chats, get nothing about
      the member who is overdue.

    Limited content only: the limited message, the complaint line and the opt-out line, no digit,
    no account, no amount; 0 messages to anyone else (guarantors, referees, group members,
    contacts: every request reaches a channel of the loan's own borrower, or carries the limited
    content)."""
    session = bound.session
    br = f.branch(session)
    phone_only = f.borrower(session, br, telegram=False, whatsapp_opt_in=True, locale="sw")
    handed_on = f.borrower(session, br, locale="fr")
    new_holder = f.borrower(session, br, telegram=False)
    umoja = f.group(session, br, weekday=(TODAY.weekday() + 3) % 7)  # no meeting tomorrow
    overdue_member = f.borrower(session, br, group=umoja)
    others = [f.borrower(session, br, group=umoja) for _ in range(3)]
    loans = {
        "phone_only": f.loan(session, phone_only, first_due=TODAY - timedelta(days=1)),
        "handed_on": f.loan(session, handed_on, first_due=TODAY - timedelta(days=3)),
        "member": f.loan(session, overdue_member, first_due=TODAY - timedelta(days=7)),
    }
    for other in others:
        f.loan(session, other, first_due=TODAY + timedelta(days=20))
    session.commit()
    Planner().plan(session, AT, write=True)
    identity = session.scalar(
        select(ChannelIdentity).where(ChannelIdentity.borrower_id == handed_on.id)
    )
    assert identity is not None
    identity.borrower_id = new_holder.id  # verified by someone else since
    session.commit()

    deliverer = fast_deliverer(bound.factory, {"telegram": telegram, "whatsapp": whatsapp})
    try:
        await settle_delivery(deliverer, session, AT, until=AT + timedelta(hours=1))
    finally:
        deliverer.close()

    rows = {row.loan_id: row for row in rows_where(session)}
    assert {loan.id for loan in loans.values()} <= {
        lid for lid, row in rows.items() if row.status == OutboxStatus.sent
    }
    own_chats = {
        borrower_id: chat
        for borrower_id, chat in session.execute(
            select(ChannelIdentity.borrower_id, ChannelIdentity.external_user_id).where(
                ChannelIdentity.verified_at.is_not(None)
            )
        )
    }

    def limited(locale: str) -> str:
        lines = (render(key, locale) for key in (LIMITED_KEY, COMPLAINT_KEY, OPT_OUT_KEY))
        return "\n\n".join(lines)

    # The number on file: the limited template, nothing to fill in.
    [wa] = fake_wa[0].state.query("messages", phone_only.phone_e164.lstrip("+"))
    assert wa["payload"]["type"] == "template"
    assert wa["payload"]["template"]["name"] == "kopa_reminder_limited_v1"
    assert "components" not in wa["payload"]["template"]
    # The handed-on chat: the limited text in the borrower's language, nothing else.
    handed = fake_tg[0].sent_texts(identity.external_user_id)
    assert handed == [limited("fr")]
    assert not re.search(r"\d", handed[0])
    # The group: the overdue member hears of their own installment, the others of nothing.
    member_row = rows[loans["member"].id]
    assert fake_tg[0].sent_texts(own_chats[overdue_member.id]) != []
    for other in others:
        assert fake_tg[0].sent_texts(own_chats[other.id]) == []
    # Every request went to the loan's own borrower's verified chat, or said nothing but the
    # limited text.
    by_chat = {row.recipient: row for row in rows.values()}
    for entry in [*fake_tg[0].state.query("sendMessage", None)]:
        row = by_chat[str(entry["recipient"])]
        own = own_chats.get(row.borrower_id or -1) == row.recipient
        if not own:
            assert entry["payload"]["text"] == limited(row.locale)
    to_others = [t for o in others for t in fake_tg[0].sent_texts(own_chats[o.id])]
    assert member_row.args["account"] not in " ".join(to_others)
