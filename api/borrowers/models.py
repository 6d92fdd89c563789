from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.types import UTCDateTime


class Channel(enum.StrEnum):
    telegram = "telegram"
    whatsapp = "whatsapp"
    terminal = "terminal"  # the `kopa chat` terminal; its identity is proven by ``--phone``


class Borrower(Base):
    """A client of the MFI. Knowledge factors are stored only as peppered hashes."""

    __tablename__ = "borrower"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    officer_id: Mapped[int | None] = mapped_column(ForeignKey("branch_officer.id"), index=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("branch_group.id"), index=True)
    full_name: Mapped[str] = mapped_column(String(160))
    phone_e164: Mapped[str] = mapped_column(String(20), unique=True)
    preferred_language: Mapped[str] = mapped_column(String(8), default="en")
    dob_hash: Mapped[str] = mapped_column(String(64))
    national_id_last4_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())


class ChannelIdentity(Base):
    """A chat account (Telegram user id, WhatsApp id). Bound to a borrower only by verification."""

    __tablename__ = "borrower_channel_identity"
    __table_args__ = (UniqueConstraint("channel", "external_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(Enum(Channel, native_enum=False, length=16))
    external_user_id: Mapped[str] = mapped_column(String(64))
    borrower_id: Mapped[int | None] = mapped_column(ForeignKey("borrower.id"), index=True)
    proven_phone_e164: Mapped[str | None] = mapped_column(String(20))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The knowledge factors offered by the last verification start, comma-separated
    # (``dob``, ``national_id``): the only ones an answer is checked against.
    pending_factor: Mapped[str | None] = mapped_column(String(16))
    # Escalating lockouts: how many this chat had in its current 24 h failure window, the
    # window's start and its failures; ``held_at`` locks it until an officer unlocks it.
    lockouts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failure_window_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failures_in_window: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Chosen in this chat before or after verification; copied to the borrower once bound.
    locale: Mapped[str | None] = mapped_column(String(8))
    # Opt-in / opt-out said in this chat; applies to the borrower once bound. None: never said.
    opted_in: Mapped[bool | None] = mapped_column(Boolean)
    consent_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())


class ChatAlias(Base):
    """The pseudonym by which Rasa knows a chat, and the phone the channel proved in it.

    The gateway registers a chat before it forwards the chat's message to Rasa, which sees only
    ``pseudonym`` (:mod:`api.borrowers.pseudonym`); the identity routes translate it back to the
    real ``external_user_id``, which the notifier needs to reach the borrower.
    ``proven_phone_e164`` is the phone the channel proved last (a Telegram contact shared by its
    owner, the WhatsApp sender id), so that no phone number ever travels through Rasa.
    """

    __tablename__ = "borrower_chat_alias"
    __table_args__ = (
        UniqueConstraint("channel", "pseudonym"),
        UniqueConstraint("channel", "external_user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[Channel] = mapped_column(Enum(Channel, native_enum=False, length=16))
    pseudonym: Mapped[str] = mapped_column(String(64))
    external_user_id: Mapped[str] = mapped_column(String(64))
    proven_phone_e164: Mapped[str | None] = mapped_column(String(20))
    phone_proven_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())


class Consent(Base):
    """Whether a borrower accepts messages on a channel; opt-out wins over everything."""

    __tablename__ = "borrower_consent"
    __table_args__ = (UniqueConstraint("borrower_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    borrower_id: Mapped[int] = mapped_column(ForeignKey("borrower.id"), index=True)
    channel: Mapped[Channel] = mapped_column(Enum(Channel, native_enum=False, length=16))
    opted_in: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(32), default="import")
