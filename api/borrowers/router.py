"""Identity routes: status, verification, consent and language of one chat."""

from __future__ import annotations

from fastapi import APIRouter

from api.borrowers import flows, preferences, service, verification
from api.borrowers.dependencies import UserPath
from api.borrowers.exceptions import IdentityLocked, VerificationFailed
from api.borrowers.models import Channel
from api.borrowers.schemas import (
    CallbackIn,
    CallbackOut,
    ChatAliasIn,
    ChatAliasOut,
    ConsentIn,
    ConsentOut,
    IdentityOut,
    LanguageIn,
    LanguageOut,
    VerificationCompleteIn,
    VerificationCompleteOut,
    VerificationStartIn,
    VerificationStartOut,
)
from api.core.deps import NowDep, SessionDep, SettingsDep

router = APIRouter(prefix="/v1/identities/{channel}/{user}", tags=["identities"])


@router.get("", response_model=IdentityOut)
def resolve_identity(
    channel: Channel, user: UserPath, session: SessionDep, now: NowDep, settings: SettingsDep
) -> IdentityOut:
    """Say whether this chat is verified, expired, locked or unverified."""
    view = service.resolve(session=session, channel=channel, user=user, now=now, settings=settings)
    return IdentityOut(
        status=view.status, locale=view.locale, first_name=view.first_name, timezone=view.timezone
    )


@router.put("/alias", response_model=ChatAliasOut)
def register_chat(
    channel: Channel,
    user: UserPath,
    body: ChatAliasIn,
    session: SessionDep,
    now: NowDep,
    settings: SettingsDep,
) -> ChatAliasOut:
    """Register the chat (and the phone its channel just proved); answer its pseudonym."""
    pseudonym = service.register_chat(
        session=session, channel=channel, user=user, phone=body.phone, now=now, settings=settings
    )
    session.commit()
    return ChatAliasOut(pseudonym=pseudonym)


@router.post(
    "/verification/start",
    response_model=VerificationStartOut,
    responses={423: {"description": "locked"}},
)
def start_verification(
    channel: Channel,
    user: UserPath,
    body: VerificationStartIn,
    session: SessionDep,
    now: NowDep,
    settings: SettingsDep,
) -> VerificationStartOut:
    """Remember the proven phone and say which question to ask (same for any phone)."""
    # Rasa never carries the phone: it is the one the gateway registered for this chat.
    phone = service.chat_phone(session=session, channel=channel, user=user, named=body.phone)
    factors = verification.start_verification(
        session=session, channel=channel, user=user, phone=phone, now=now, settings=settings
    )
    session.commit()
    return VerificationStartOut(factor=factors[0], factors=list(factors))


@router.post(
    "/verification/complete",
    response_model=VerificationCompleteOut,
    responses={
        401: {"description": "verification_failed"},
        409: {"description": "factor_not_offered"},
        423: {"description": "locked (``held``: until an officer unlocks it)"},
    },
)
def complete_verification(
    channel: Channel,
    user: UserPath,
    body: VerificationCompleteIn,
    session: SessionDep,
    now: NowDep,
    settings: SettingsDep,
) -> VerificationCompleteOut:
    """Check the answers; a failure is counted, five lock the chat for a while, longer each
    time, and fifteen in a day hold it for an officer."""
    outcome = flows.complete_verification(
        session=session,
        channel=channel,
        user=user,
        answers=body.all_answers(),
        now=now,
        settings=settings,
    )
    session.commit()
    if outcome.held:
        raise IdentityLocked(locked_until=None, held=True)
    if outcome.locked_until is not None:
        raise IdentityLocked(locked_until=outcome.locked_until.isoformat(), held=False)
    if not outcome.verified:
        raise VerificationFailed(attempts_left=outcome.attempts_left)
    timezone = service.chat_timezone(
        session=session,
        channel=channel,
        user=user,
        identity=service.find_identity(session, channel, user),
    )
    return VerificationCompleteOut(
        status=service.IdentityStatus.verified, locale=outcome.locale, timezone=timezone
    )


@router.post("/callback", response_model=CallbackOut, status_code=202)
def request_callback(
    channel: Channel, user: UserPath, body: CallbackIn, session: SessionDep, now: NowDep
) -> CallbackOut:
    """Ask the officer to call back the registered number of the phone this chat proved (the
    same answer whoever owns it)."""
    flows.request_callback(
        session=session,
        channel=channel,
        user=user,
        phone=service.chat_phone(session=session, channel=channel, user=user, named=body.phone),
        now=now,
        hardship=body.hardship,
        borrower_words=body.borrower_words,
    )
    session.commit()
    return CallbackOut(status="requested")


@router.post("/unlock", status_code=204)
def unlock(channel: Channel, user: UserPath, session: SessionDep, now: NowDep) -> None:
    """An officer who spoke to the borrower lifts this chat's lockout or hold."""
    verification.unlock(session=session, channel=channel, user=user, now=now)
    session.commit()


@router.put("/consent", response_model=ConsentOut)
def set_consent(
    channel: Channel, user: UserPath, body: ConsentIn, session: SessionDep, now: NowDep
) -> ConsentOut:
    """Opt this chat in or out of messages, effective at once."""
    preferences.set_consent(
        session=session, channel=channel, user=user, opted_in=body.opted_in, now=now
    )
    session.commit()
    return ConsentOut(channel=channel, opted_in=body.opted_in)


@router.put("/language", response_model=LanguageOut)
def set_language(
    channel: Channel, user: UserPath, body: LanguageIn, session: SessionDep, now: NowDep
) -> LanguageOut:
    """Speak this language in this chat and in the borrower's messages."""
    locale = preferences.set_language(
        session=session, channel=channel, user=user, locale=body.locale, now=now
    )
    session.commit()
    return LanguageOut(locale=locale)
