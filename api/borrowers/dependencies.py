"""Resolve the borrower only from the verified chat identity in the path, never from the body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path

from api.borrowers import service
from api.borrowers.models import Borrower, Channel, ChannelIdentity
from api.core.deps import NowDep, SessionDep, SettingsDep


def chat_user(
    channel: Channel,
    user: Annotated[
        str,
        Path(
            min_length=1,
            max_length=64,
            description="the chat's pseudonym (as Rasa knows it) or the channel's user id",
        ),
    ],
    session: SessionDep,
) -> str:
    """The channel's user id: a pseudonym the gateway registered is translated back."""
    return service.chat_user(session=session, channel=channel, user=user)


# Every identity route names the chat by ``{user}``; the routes see the channel's real id.
UserPath = Annotated[str, Depends(chat_user)]


@dataclass(frozen=True)
class VerifiedChat:
    identity: ChannelIdentity
    borrower: Borrower


def verified_chat(
    channel: Channel, user: UserPath, session: SessionDep, now: NowDep, settings: SettingsDep
) -> VerifiedChat:
    identity, borrower = service.verified_borrower(
        session=session, channel=channel, user=user, now=now, settings=settings
    )
    return VerifiedChat(identity, borrower)


VerifiedChatDep = Annotated[VerifiedChat, Depends(verified_chat)]
