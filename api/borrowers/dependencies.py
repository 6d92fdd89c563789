"""Resolve the borrower only from the verified chat identity in the path, never from the body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path

from api.borrowers import service
from api.borrowers.models import Borrower, Channel, ChannelIdentity
from api.core.deps import NowDep, SessionDep, SettingsDep

UserPath = Annotated[str, Path(min_length=1, max_length=64, description="the channel's user id")]


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
