"""Channel identities: who is chatting, and whether they proved to be a borrower.

A chat is bound to a borrower only by verification (:mod:`api.borrowers.verification`): a phone
the channel proved (Telegram contact shared by its owner, WhatsApp sender id, terminal
``--phone``) that matches the borrower's, plus one knowledge factor. Answers and work are the
same whether or not the phone belongs to a borrower, so the API cannot be used to find out who
is a client. What a chat chooses (messages on or off, its language) is in
:mod:`api.borrowers.preferences`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from phonenumbers.timezone import UNKNOWN_TIMEZONE, time_zones_for_number
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.borrowers.exceptions import (
    ChatNotRegistered,
    InvalidPhone,
    PhoneRequired,
    VerificationRequired,
)
from api.borrowers.models import Borrower, Channel, ChannelIdentity, ChatAlias
from api.borrowers.pseudonym import chat_pseudonym, is_pseudonym
from api.branches.models import Branch
from api.core.config import Settings
from i18n import DEFAULT_LOCALE


class IdentityStatus(enum.StrEnum):
    unverified = "unverified"
    verified = "verified"
    expired = "expired"
    locked = "locked"


@dataclass(frozen=True)
class IdentityView:
    status: IdentityStatus
    locale: str
    first_name: str | None
    # The IANA zone of the borrower behind the chat (verified, or owning the phone the chat
    # proved), so "tomorrow" and "by 14:00" mean the borrower's day and clock; None if unknown.
    timezone: str | None = None


def normalize_phone(value: str) -> str:
    """E.164 form of an international number.

    Raises:
        InvalidPhone: not a valid number with its country code.
    """
    try:
        parsed = phonenumbers.parse(value.strip(), None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone() from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhone()
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def find_identity(session: Session, channel: Channel, user: str) -> ChannelIdentity | None:
    return session.scalar(
        select(ChannelIdentity).where(
            ChannelIdentity.channel == channel, ChannelIdentity.external_user_id == user
        )
    )


def find_or_add_identity(session: Session, channel: Channel, user: str) -> ChannelIdentity:
    identity = find_identity(session, channel, user)
    if identity is None:
        identity = ChannelIdentity(channel=channel, external_user_id=user, failed_attempts=0)
        session.add(identity)
        session.flush()
    return identity


def is_locked(identity: ChannelIdentity, now: datetime) -> bool:
    held = identity.held_at is not None
    return held or (identity.locked_until is not None and identity.locked_until > now)


def _is_fresh(identity: ChannelIdentity, now: datetime, settings: Settings) -> bool:
    idle = timedelta(minutes=settings.verification.idle_minutes)
    return (
        identity.borrower_id is not None
        and identity.verified_at is not None
        and identity.last_seen_at is not None
        and now - identity.last_seen_at <= idle
    )


def first_name(borrower: Borrower) -> str:
    return borrower.full_name.split()[0] if borrower.full_name.strip() else ""


def identity_locale(session: Session, identity: ChannelIdentity | None) -> str:
    if identity is None:
        return DEFAULT_LOCALE
    if identity.locale:
        return identity.locale
    if identity.borrower_id is not None:
        return session.get_one(Borrower, identity.borrower_id).preferred_language
    return DEFAULT_LOCALE


def resolve(
    *, session: Session, channel: Channel, user: str, now: datetime, settings: Settings
) -> IdentityView:
    """The identity's status; reading it does not count as activity."""
    identity = find_identity(session, channel, user)
    locale = identity_locale(session, identity)
    timezone = chat_timezone(session=session, channel=channel, user=user, identity=identity)
    if identity is None:
        return IdentityView(IdentityStatus.unverified, locale, None, timezone)
    if is_locked(identity, now):
        return IdentityView(IdentityStatus.locked, locale, None, timezone)
    if identity.borrower_id is None or identity.verified_at is None:
        return IdentityView(IdentityStatus.unverified, locale, None, timezone)
    if not _is_fresh(identity, now, settings):
        return IdentityView(IdentityStatus.expired, locale, None, timezone)
    borrower = session.get_one(Borrower, identity.borrower_id)
    return IdentityView(IdentityStatus.verified, locale, first_name(borrower), timezone)


def chat_timezone(
    *, session: Session, channel: Channel, user: str, identity: ChannelIdentity | None
) -> str | None:
    """The time zone to read and say days and hours in for this chat, never shown to it.

    A verified chat gets its borrower's branch zone. Before that, the zone comes from the
    proven phone's number alone (its country and prefix), never from whether a borrower owns
    it: a chatter probing phones must not tell known ones from unknown ones by the clock the
    bot keeps. None when neither says (the bot then uses the deployment's zone).
    """
    if identity is not None and identity.borrower_id is not None and identity.verified_at:
        borrower = session.get_one(Borrower, identity.borrower_id)
        return session.get_one(Branch, borrower.branch_id).timezone
    phone = chat_phone(session=session, channel=channel, user=user, named=None)
    return phone_timezone(phone) if phone is not None else None


def phone_timezone(phone: str) -> str | None:
    """The one time zone a phone number's prefix lies in, or None if it spans several."""
    try:
        zones = time_zones_for_number(phonenumbers.parse(phone))
    except phonenumbers.NumberParseException:
        return None
    return zones[0] if len(zones) == 1 and zones[0] != UNKNOWN_TIMEZONE else None


def verified_borrower(
    *, session: Session, channel: Channel, user: str, now: datetime, settings: Settings
) -> tuple[ChannelIdentity, Borrower]:
    """The borrower behind a verified, fresh identity; the access refreshes ``last_seen_at``.

    Raises:
        VerificationRequired: unknown, unverified, idle too long or locked.
    """
    identity = find_identity(session, channel, user)
    if identity is None or is_locked(identity, now) or not _is_fresh(identity, now, settings):
        raise VerificationRequired()
    assert identity.borrower_id is not None
    identity.last_seen_at = now
    return identity, session.get_one(Borrower, identity.borrower_id)


def remember_phone(identity: ChannelIdentity, phone: str | None) -> None:
    """Keep the phone the channel proved for this chat (or the one proven before).

    Raises:
        PhoneRequired: no phone given and none proven before in this chat.
        InvalidPhone: the phone is not a valid international number.
    """
    if phone is None:
        if identity.proven_phone_e164 is None:
            raise PhoneRequired()
        return
    proven = normalize_phone(phone)
    if identity.proven_phone_e164 != proven and identity.borrower_id is not None:
        # A different phone is a different person as far as we know: unbind first.
        identity.borrower_id = None
        identity.verified_at = None
    identity.proven_phone_e164 = proven


def proven_phone_borrower(
    *, session: Session, channel: Channel, user: str, phone: str | None
) -> tuple[ChannelIdentity, Borrower | None]:
    """The borrower whose registered phone this chat proved (no knowledge factor needed).

    Only for what discloses nothing to the chatter, such as an officer calling the registered
    number back.

    Raises:
        PhoneRequired: no phone given and none proven before in this chat.
        InvalidPhone: the phone is not a valid international number.
    """
    identity = find_or_add_identity(session, channel, user)
    remember_phone(identity, phone)
    borrower = session.scalar(
        select(Borrower).where(Borrower.phone_e164 == identity.proven_phone_e164)
    )
    return identity, borrower


def borrower_identities(session: Session, borrower_id: int) -> list[ChannelIdentity]:
    """Verified chats of a borrower, most recently active first."""
    return list(
        session.scalars(
            select(ChannelIdentity)
            .where(
                ChannelIdentity.borrower_id == borrower_id,
                ChannelIdentity.verified_at.is_not(None),
            )
            .order_by(ChannelIdentity.last_seen_at.desc(), ChannelIdentity.id.desc())
        )
    )


# The channels a message can be sent on (the terminal chat is a person at the console).
MESSAGING_CHANNELS = (Channel.telegram, Channel.whatsapp)


def messageable_identities(session: Session, borrower_id: int) -> list[ChannelIdentity]:
    """The verified chats a message to the borrower can go to, most recently active first."""
    return [i for i in borrower_identities(session, borrower_id) if i.channel in MESSAGING_CHANNELS]


def mask_phone(phone: str) -> str:
    """``+254712345678`` → ``+2547••••5678``: enough for an officer to recognise, not to dial."""
    if len(phone) <= 9:
        return "•" * max(len(phone) - 2, 0) + phone[-2:]
    return f"{phone[:5]}••••{phone[-4:]}"


# --- chat pseudonyms (what Rasa knows a chat by) -----------------------------------------------


def register_chat(
    *,
    session: Session,
    channel: Channel,
    user: str,
    phone: str | None,
    now: datetime,
    settings: Settings,
) -> str:
    """Register a chat before its message goes to Rasa; answer the pseudonym Rasa will know.

    ``phone`` is the phone the channel proved with this message (a Telegram contact shared by
    its owner, the WhatsApp sender id); it is kept for the verification that may follow.

    Raises:
        InvalidPhone: the phone is not a valid international number.
    """
    alias = session.scalar(
        select(ChatAlias).where(ChatAlias.channel == channel, ChatAlias.external_user_id == user)
    )
    if alias is None:
        pseudonym = chat_pseudonym(settings.hash_pepper.get_secret_value(), channel.value, user)
        alias = ChatAlias(channel=channel, external_user_id=user, pseudonym=pseudonym)
        session.add(alias)
    if phone is not None:
        alias.proven_phone_e164 = normalize_phone(phone)
        alias.phone_proven_at = now
    session.flush()
    return alias.pseudonym


def chat_user(*, session: Session, channel: Channel, user: str) -> str:
    """The channel's own user id behind ``user`` (a registered pseudonym, or the id itself).

    Raises:
        ChatNotRegistered: ``user`` is a pseudonym no gateway registered.
    """
    if not is_pseudonym(user):
        return user
    real = session.scalar(
        select(ChatAlias.external_user_id).where(
            ChatAlias.channel == channel, ChatAlias.pseudonym == user
        )
    )
    if real is None:
        raise ChatNotRegistered()
    return real


def registered_phone(*, session: Session, channel: Channel, user: str) -> str | None:
    """The phone the channel last proved in this chat, as the gateway registered it."""
    return session.scalar(
        select(ChatAlias.proven_phone_e164).where(
            ChatAlias.channel == channel, ChatAlias.external_user_id == user
        )
    )


def chat_phone(*, session: Session, channel: Channel, user: str, named: str | None) -> str | None:
    """The phone to act on for this chat: one it already proved wins over one a caller names.

    A chat that proved a phone (registered by the gateway, or proven in an earlier check) can
    never be pointed at another borrower's phone by a request body; ``named`` only serves a
    chat that proved none yet.
    """
    registered = registered_phone(session=session, channel=channel, user=user)
    if registered is not None:
        return registered
    identity = find_identity(session, channel, user)
    proven = identity.proven_phone_e164 if identity is not None else None
    return proven or named
