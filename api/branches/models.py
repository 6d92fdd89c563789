from __future__ import annotations

import enum
from datetime import datetime, time
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Integer, String, Time, func
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.types import CURRENCY, UTCDateTime


class Branch(Base):
    """An MFI branch: where borrowers live, which money and time zone they use, how they pay."""

    __tablename__ = "branch"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    timezone: Mapped[str] = mapped_column(String(64))  # IANA
    currency: Mapped[str] = mapped_column(CURRENCY)  # ISO 4217
    # {"mobile_money": [{"provider", "type": "paybill"|"till", "number"}], "bank": {...},
    #  "agents": [{"name", "location"}]}
    payment_instructions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Days the branch is closed beyond the country's public holidays (ISO dates).
    extra_holidays: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())


class StaffRole(enum.StrEnum):
    """What a member of staff sees in the console: their branch, their branches, or all."""

    officer = "officer"
    manager = "manager"
    admin = "admin"


class Officer(Base):
    """A loan officer, branch manager or administrator.

    Reachable on a chat channel for escalations, and (with an email and a password) able to
    sign in to the web console. The password is an Argon2 hash; ``failed_logins`` counts wrong
    passwords since the last success and ``locked_until`` refuses every sign-in until then.
    """

    __tablename__ = "branch_officer"

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[StaffRole] = mapped_column(Enum(StaffRole, native_enum=False, length=16))
    channel: Mapped[str | None] = mapped_column(String(16))  # telegram | whatsapp
    chat_id: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8), default="en")
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OfficerBranch(Base):
    """A further branch a manager oversees, beyond the one they belong to."""

    __tablename__ = "branch_officer_branch"

    officer_id: Mapped[int] = mapped_column(ForeignKey("branch_officer.id"), primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), primary_key=True)


class BorrowerGroup(Base):
    """A solidarity group whose members meet weekly to repay."""

    __tablename__ = "branch_group"

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    meeting_weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday
    meeting_time: Mapped[time] = mapped_column(Time)
    meeting_place: Mapped[str] = mapped_column(String(200), default="")
