"""What a chat chooses for itself: messages on or off (consent) and its language."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.borrowers import service
from api.borrowers.exceptions import UnsupportedLocale
from api.borrowers.models import Borrower, Channel, ChannelIdentity, Consent
from api.ledger import service as ledger
from i18n import SUPPORTED_LOCALES


def apply_chat_choices(
    session: Session, *, identity: ChannelIdentity, borrower: Borrower, now: datetime
) -> None:
    """What was said in this chat before verification now applies to the borrower."""
    if identity.locale:
        borrower.preferred_language = identity.locale
    if identity.opted_in is not None:
        _set_consent(
            session,
            borrower_id=borrower.id,
            channel=identity.channel,
            opted_in=identity.opted_in,
            now=identity.consent_changed_at or now,
        )


def _set_consent(
    session: Session,
    *,
    borrower_id: int,
    channel: Channel,
    opted_in: bool,
    now: datetime,
    source: str = "chat",
) -> None:
    consent = session.scalar(
        select(Consent).where(Consent.borrower_id == borrower_id, Consent.channel == channel)
    )
    if consent is None:
        consent = Consent(borrower_id=borrower_id, channel=channel, source=source)
        session.add(consent)
    consent.opted_in = opted_in
    consent.source = source
    if opted_in:
        consent.opted_in_at = now
    else:
        consent.opted_out_at = now


def set_consent(
    *, session: Session, channel: Channel, user: str, opted_in: bool, now: datetime
) -> None:
    """Opt this chat in or out, at once; also the bound borrower's consent for this channel.

    No verification is needed: a chat may always stop (or restart) messages to itself.
    """
    identity = service.find_or_add_identity(session, channel, user)
    identity.opted_in = opted_in
    identity.consent_changed_at = now
    if identity.borrower_id is not None:
        _set_consent(
            session, borrower_id=identity.borrower_id, channel=channel, opted_in=opted_in, now=now
        )
    ledger.record(
        session=session,
        at=now,
        direction="inbound",
        kind="consent",
        decision="opted_in" if opted_in else "opted_out",
        rule="chat_request",
        borrower_id=identity.borrower_id,
        channel=channel.value,
    )


def opt_out_borrower(
    *, session: Session, borrower_id: int, channel: Channel, now: datetime, source: str
) -> None:
    """Stop messages to ``borrower_id`` on ``channel`` for a reason that is not the chat's own
    request (``source``: e.g. ``provider_blocked``, the provider says the chat blocked us).

    The chat identity is left as it is, and the caller records the ledger event of its cause.
    """
    _set_consent(
        session, borrower_id=borrower_id, channel=channel, opted_in=False, now=now, source=source
    )


def set_language(
    *, session: Session, channel: Channel, user: str, locale: str, now: datetime
) -> str:
    """Use ``locale`` in this chat (and for the bound borrower's messages).

    Raises:
        UnsupportedLocale: not one of Kopa's languages.
    """
    language = locale.strip().replace("-", "_").split("_")[0].lower()
    if language not in SUPPORTED_LOCALES:
        raise UnsupportedLocale(supported=list(SUPPORTED_LOCALES))
    identity = service.find_or_add_identity(session, channel, user)
    identity.locale = language
    if identity.borrower_id is not None:
        session.get_one(Borrower, identity.borrower_id).preferred_language = language
    ledger.record(
        session=session,
        at=now,
        direction="inbound",
        kind="language",
        decision="changed",
        rule="chat_request",
        borrower_id=identity.borrower_id,
        channel=channel.value,
        detail={"locale": language},
    )
    return language
