"""Channel identities: who is chatting, and whether they proved to be a borrower.

A chat is bound to a borrower only by verification: a phone the channel proved (Telegram
contact shared by its owner, WhatsApp sender id, terminal ``--phone``) that matches the
borrower's, plus one knowledge factor. Answers and work are the same whether or not the phone
belongs to a borrower, so the API cannot be used to find out who is a client.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import phonenumbers
from phonenumbers.timezone import UNKNOWN_TIMEZONE, time_zones_for_number
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.borrowers.exceptions import (
    ChatNotRegistered,
    FactorNotOffered,
    IdentityLocked,
    IdentityNotFound,
    InvalidPhone,
    PhoneRequired,
    UnsupportedLocale,
    VerificationNotStarted,
    VerificationRequired,
)
from api.borrowers.models import Borrower, Channel, ChannelIdentity, ChatAlias, Consent
from api.borrowers.pseudonym import chat_pseudonym, is_pseudonym
from api.branches.models import Branch
from api.core.config import Settings, VerificationPolicy
from api.core.security import hash_secret_factor
from api.ledger import service as ledger
from i18n import DEFAULT_LOCALE, SUPPORTED_LOCALES


class IdentityStatus(enum.StrEnum):
    unverified = "unverified"
    verified = "verified"
    expired = "expired"
    locked = "locked"


class Factor(enum.StrEnum):
    dob = "dob"
    national_id = "national_id"


@dataclass(frozen=True)
class IdentityView:
    status: IdentityStatus
    locale: str
    first_name: str | None
    # The IANA zone of the borrower behind the chat (verified, or owning the phone the chat
    # proved), so "tomorrow" and "by 14:00" mean the borrower's day and clock; None if unknown.
    timezone: str | None = None


@dataclass(frozen=True)
class VerificationOutcome:
    verified: bool
    locale: str
    attempts_left: int = 0
    locked_until: datetime | None = None
    # Held until an officer unlocks it; ``held_borrower`` is the phone's borrower, if any, for
    # the officer's case (never told to the chatter).
    held: bool = False
    held_borrower: Borrower | None = None


# --- knowledge factors (the seed and the CSV import store them with these) -----------------


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


_DOB_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%d %m %Y")


def normalize_dob(value: str) -> str:
    """ISO form of a typed date of birth (day first, as written in our markets); else as typed."""
    text = " ".join(value.split())
    for fmt in _DOB_FORMATS:
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    return text


def dob_hash(pepper: str, dob: date) -> str:
    return hash_secret_factor(pepper, dob.isoformat())


def national_id_hash(pepper: str, last_digits: str) -> str:
    return hash_secret_factor(pepper, "".join(ch for ch in last_digits if ch.isalnum()))


def _factor_hash(pepper: str, factor: Factor, value: str) -> str:
    if factor is Factor.dob:
        return hash_secret_factor(pepper, normalize_dob(value))
    return national_id_hash(pepper, value)


def offered_factors(settings: Settings) -> tuple[Factor, ...]:
    """The factors the institution accepts, all offered at once: the borrower answers whichever
    they know. They depend only on the settings, never on whether a borrower has the phone."""
    return tuple(Factor(name) for name in settings.verification.factors) or (Factor.dob,)


def _offered(identity: ChannelIdentity) -> frozenset[Factor]:
    names = (identity.pending_factor or "").split(",")
    return frozenset(Factor(name) for name in names if name in Factor.__members__)


# --- identities ------------------------------------------------------------------------------


def find_identity(session: Session, channel: Channel, user: str) -> ChannelIdentity | None:
    return session.scalar(
        select(ChannelIdentity).where(
            ChannelIdentity.channel == channel, ChannelIdentity.external_user_id == user
        )
    )


def _identity(session: Session, channel: Channel, user: str) -> ChannelIdentity:
    identity = find_identity(session, channel, user)
    if identity is None:
        identity = ChannelIdentity(channel=channel, external_user_id=user, failed_attempts=0)
        session.add(identity)
        session.flush()
    return identity


def _is_locked(identity: ChannelIdentity, now: datetime) -> bool:
    held = identity.held_at is not None
    return held or (identity.locked_until is not None and identity.locked_until > now)


def _locked(identity: ChannelIdentity) -> IdentityLocked:
    if identity.held_at is not None:
        return IdentityLocked(locked_until=None, held=True)
    return IdentityLocked(locked_until=_iso(identity.locked_until), held=False)


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
    if _is_locked(identity, now):
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
    if identity is None or _is_locked(identity, now) or not _is_fresh(identity, now, settings):
        raise VerificationRequired()
    assert identity.borrower_id is not None
    identity.last_seen_at = now
    return identity, session.get_one(Borrower, identity.borrower_id)


def start_verification(
    *,
    session: Session,
    channel: Channel,
    user: str,
    phone: str | None,
    now: datetime,
    settings: Settings,
) -> tuple[Factor, ...]:
    """Remember the proven phone and answer which knowledge factors to offer.

    Raises:
        PhoneRequired: no phone given and none proven before in this chat.
        InvalidPhone: the phone is not a valid international number.
        IdentityLocked: too many failures recently.
    """
    identity = _identity(session, channel, user)
    if _is_locked(identity, now):
        raise _locked(identity)
    _remember_phone(identity, phone)
    offered = offered_factors(settings)
    identity.pending_factor = ",".join(factor.value for factor in offered)
    return offered


def _remember_phone(identity: ChannelIdentity, phone: str | None) -> None:
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


# A stand-in hash compared when no borrower has the phone, so both paths do the same work.
_ABSENT = "0" * 64


def complete_verification(
    *,
    session: Session,
    channel: Channel,
    user: str,
    answers: dict[Factor, str],
    now: datetime,
    settings: Settings,
) -> VerificationOutcome:
    """Check the answers; bind the chat to the borrower on success, count failures otherwise.

    Every factor answered must be one this check offered, and all must match: giving two
    answers is still one try. The caller commits whatever the outcome (a failure must be
    counted) and then answers.

    Raises:
        VerificationNotStarted: no proven phone in this chat yet.
        FactorNotOffered: an answer to a factor this check did not offer (counts nothing).
        IdentityLocked: locked or held before this attempt.
    """
    identity = find_identity(session, channel, user)
    if identity is None or identity.proven_phone_e164 is None:
        raise VerificationNotStarted()
    if _is_locked(identity, now):
        raise _locked(identity)
    offered = _offered(identity)
    if not answers or not set(answers) <= offered:
        raise FactorNotOffered(offered=sorted(offered))
    if identity.locked_until is not None:
        identity.locked_until = None
        identity.failed_attempts = 0

    borrower = session.scalar(
        select(Borrower).where(Borrower.phone_e164 == identity.proven_phone_e164)
    )
    pepper = settings.hash_pepper.get_secret_value()
    # Every answer is hashed and compared, against a stand-in when no borrower has the phone:
    # the same work either way, so timing tells nothing about who is a client.
    matches = borrower is not None
    for factor, value in sorted(answers.items()):
        stored = _ABSENT
        if borrower is not None:
            stored = borrower.dob_hash if factor is Factor.dob else borrower.national_id_last4_hash
        matches = hmac.compare_digest(_factor_hash(pepper, factor, value), stored) and matches

    if matches and borrower is not None:
        identity.borrower_id = borrower.id
        identity.verified_at = now
        identity.last_seen_at = now
        identity.failed_attempts = 0
        identity.failures_in_window = 0
        identity.failure_window_started_at = None
        identity.lockouts = 0
        identity.locked_until = None
        identity.pending_factor = None
        _apply_chat_choices(session, identity=identity, borrower=borrower, now=now)
        ledger.record(
            session=session,
            at=now,
            direction="inbound",
            kind="verification",
            decision="verified",
            borrower_id=borrower.id,
            channel=channel.value,
        )
        return VerificationOutcome(verified=True, locale=borrower.preferred_language)

    _count_failure(identity, now, settings.verification)
    ledger.record(
        session=session,
        at=now,
        direction="inbound",
        kind="verification",
        decision="held" if identity.held_at else "failed",
        rule="knowledge_factor",
        channel=channel.value,
        detail={"attempt": identity.failures_in_window},
    )
    locale = identity_locale(session, identity)
    if identity.held_at is not None:
        return VerificationOutcome(False, locale, 0, None, held=True, held_borrower=borrower)
    if identity.locked_until is not None:
        return VerificationOutcome(False, locale, 0, identity.locked_until)
    left = settings.verification.max_failures - identity.failed_attempts
    return VerificationOutcome(False, locale, left)


FAILURE_WINDOW = timedelta(hours=24)


def _count_failure(identity: ChannelIdentity, now: datetime, policy: VerificationPolicy) -> None:
    """One more failure: every ``max_failures`` lock the chat, each lockout within the 24 h
    window twice as long as the one before; ``hold_after_failures`` hold it for an officer."""
    started = identity.failure_window_started_at
    if started is None or now - started >= FAILURE_WINDOW:
        identity.failure_window_started_at = now
        identity.failures_in_window = 0
        identity.lockouts = 0
    identity.failures_in_window += 1
    identity.failed_attempts += 1
    if identity.failures_in_window >= policy.hold_after_failures:
        identity.held_at = now
    elif identity.failed_attempts >= policy.max_failures:
        identity.lockouts += 1
        minutes = policy.lockout_minutes * 2 ** (identity.lockouts - 1)
        identity.locked_until = now + timedelta(minutes=minutes)
    else:
        return
    identity.failed_attempts = 0
    identity.borrower_id = None
    identity.verified_at = None


def unlock(*, session: Session, channel: Channel, user: str, now: datetime) -> None:
    """An officer who spoke to the borrower lifts the lockout or hold of this chat.

    Raises:
        IdentityNotFound: no such chat.
    """
    identity = find_identity(session, channel, user)
    if identity is None:
        raise IdentityNotFound()
    identity.held_at = None
    identity.locked_until = None
    identity.failed_attempts = 0
    identity.failures_in_window = 0
    identity.failure_window_started_at = None
    identity.lockouts = 0
    ledger.record(
        session=session,
        at=now,
        direction="inbound",
        kind="verification",
        decision="unlocked",
        rule="officer",
        channel=channel.value,
    )


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
    identity = _identity(session, channel, user)
    _remember_phone(identity, phone)
    borrower = session.scalar(
        select(Borrower).where(Borrower.phone_e164 == identity.proven_phone_e164)
    )
    return identity, borrower


def _apply_chat_choices(
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
    identity = _identity(session, channel, user)
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
    identity = _identity(session, channel, user)
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


def mask_phone(phone: str) -> str:
    """``+254712345678`` → ``+2547••••5678``: enough for an officer to recognise, not to dial."""
    if len(phone) <= 9:
        return "•" * max(len(phone) - 2, 0) + phone[-2:]
    return f"{phone[:5]}••••{phone[-4:]}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


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
