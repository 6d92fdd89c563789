"""Verification steps that reach into cases: the officer is told when a chat is held, and
calls back a borrower who asked for it before (or without) passing the check.

Kept apart from ``service`` because the case service imports the borrower service.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from api.borrowers import service, verification
from api.borrowers.models import Borrower, Channel, ChannelIdentity
from api.cases import service as case_service
from api.cases.exceptions import NoOfficer
from api.cases.models import CaseKind
from api.core.config import Settings

logger = logging.getLogger(__name__)
HELD_CATEGORY = "verification_held"
CALLBACK_CATEGORY = "callback"


def _open_officer_case(
    session: Session,
    *,
    identity: ChannelIdentity,
    borrower: Borrower,
    category: str,
    now: datetime,
    kind: CaseKind = CaseKind.officer_request,
    borrower_words: str | None = None,
) -> None:
    # One case per chat, purpose and day: pressing "call me" again adds nothing for the officer.
    key = f"{category}:{kind.value}:{identity.id}:{now.date().isoformat()}"
    try:
        case_service.open_case(
            session=session,
            borrower=borrower,
            kind=kind,
            borrower_words=borrower_words,
            now=now,
            channel=identity.channel.value,
            category=category,
            details={"chat": identity.channel.value, "before_verification": True},
            idempotency_key=key,
        )
    except NoOfficer:
        logger.error("officer case not opened: no officer", extra={"category": category})


def complete_verification(
    *,
    session: Session,
    channel: Channel,
    user: str,
    answers: dict[verification.Factor, str],
    now: datetime,
    settings: Settings,
) -> verification.VerificationOutcome:
    """Check the answers (see ``verification.complete_verification``); a chat held for an officer
    raises a case for the phone's borrower and an operator alert either way."""
    outcome = verification.complete_verification(
        session=session, channel=channel, user=user, answers=answers, now=now, settings=settings
    )
    if outcome.held:
        identity = service.find_identity(session, channel, user)
        assert identity is not None
        # An alert on the threshold even when no borrower has the phone (enumeration attempt).
        logger.warning("verification held for an officer", extra={"identity_id": identity.id})
        if outcome.held_borrower is not None:
            _open_officer_case(
                session,
                identity=identity,
                borrower=outcome.held_borrower,
                category=HELD_CATEGORY,
                now=now,
            )
    return outcome


def request_callback(
    *,
    session: Session,
    channel: Channel,
    user: str,
    phone: str | None,
    now: datetime,
    hardship: bool = False,
    borrower_words: str | None = None,
) -> None:
    """Ask the officer to call the registered number of the phone this chat proved.

    The answer is the same whether or not a borrower has that phone: the chatter learns
    nothing, and only the registered number is called. A borrower who told of hardship gets a
    hardship case (collection pauses, as for any hardship case), with their words for the
    officer.

    Raises:
        PhoneRequired: no phone given and none proven before in this chat.
        InvalidPhone: the phone is not a valid international number.
    """
    identity, borrower = service.proven_phone_borrower(
        session=session, channel=channel, user=user, phone=phone
    )
    if borrower is not None:
        _open_officer_case(
            session,
            identity=identity,
            borrower=borrower,
            category=CALLBACK_CATEGORY,
            now=now,
            kind=CaseKind.hardship if hardship else CaseKind.officer_request,
            borrower_words=borrower_words,
        )
