from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.types import UTCDateTime


class ConsoleSession(Base):
    """A signed-in officer's session, looked up by the hash of its cookie.

    Only the SHA-256 of the random session id is stored, so reading this table does not hand
    anyone a live session. ``csrf_token`` is the session's token that every form carries.
    """

    __tablename__ = "console_session"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("branch_officer.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class LoginAttempt(Base):
    """One sign-in attempt: the audit of who signed in when, and the per-address rate limit.

    ``officer_id`` is set when the email belongs to an officer; ``result`` is ``ok``,
    ``bad_credentials``, ``locked`` or ``rate_limited``. The email typed is kept lower-cased
    (officers' work addresses, not borrowers' data) so that guessing shows in the audit.
    """

    __tablename__ = "console_login_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    email: Mapped[str] = mapped_column(String(254))
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("branch_officer.id"))
    result: Mapped[str] = mapped_column(String(16))
