"""Verification: a phone the chat proved plus a knowledge factor bind it to a borrower.

Every answer is checked the same way whether or not a borrower has the phone; failures lock
the chat for longer each time and, past a limit, hold it for an officer. The seed and the CSV
import store the knowledge factors with :func:`dob_hash` and :func:`national_id_hash`.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.borrowers import preferences, service
from api.borrowers.exceptions import (
    FactorNotOffered,
    IdentityLocked,
    IdentityNotFound,
    VerificationNotStarted,
)
from api.borrowers.models import Borrower, Channel, ChannelIdentity
from api.core.config import Settings, VerificationPolicy
from api.core.security import hash_secret_factor
from api.ledger import service as ledger


class Factor(enum.StrEnum):
    dob = "dob"
    national_id = "national_id"


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
    identity = service.find_or_add_identity(session, channel, user)
    if service.is_locked(identity, now):
        raise _locked(identity)
    service.remember_phone(identity, phone)
    offered = offered_factors(settings)
    identity.pending_factor = ",".join(factor.value for factor in offered)
    return offered


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
    identity = service.find_identity(session, channel, user)
    if identity is None or identity.proven_phone_e164 is None:
        raise VerificationNotStarted()
    if service.is_locked(identity, now):
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
        preferences.apply_chat_choices(session, identity=identity, borrower=borrower, now=now)
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
    locale = service.identity_locale(session, identity)
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
    identity = service.find_identity(session, channel, user)
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


def _locked(identity: ChannelIdentity) -> IdentityLocked:
    if identity.held_at is not None:
        return IdentityLocked(locked_until=None, held=True)
    return IdentityLocked(locked_until=_iso(identity.locked_until), held=False)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
