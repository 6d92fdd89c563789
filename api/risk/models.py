from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, Numeric, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.types import UTCDateTime


class RiskScorecard(Base):
    """A fitted scorecard: its bins with their points, and the history it was fitted on.

    ``card`` is :meth:`api.risk.scorecard.Scorecard.to_json`; the latest row scores.
    """

    __tablename__ = "risk_scorecard"

    id: Mapped[int] = mapped_column(primary_key=True)
    fitted_from: Mapped[date] = mapped_column(Date)
    fitted_through: Mapped[date] = mapped_column(Date)
    snapshots: Mapped[int] = mapped_column(Integer)
    events: Mapped[int] = mapped_column(Integer)
    card: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())


class RiskScore(Base):
    """An open loan's score on one day, with the three reasons that added most points.

    Officers' eyes only: never shown to the borrower, never an input to conduct rules.
    """

    __tablename__ = "risk_score"
    __table_args__ = (UniqueConstraint("loan_id", "as_of"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"), index=True)
    scorecard_id: Mapped[int] = mapped_column(ForeignKey("risk_scorecard.id"), index=True)
    as_of: Mapped[date] = mapped_column(Date, index=True)
    points: Mapped[int] = mapped_column(Integer)
    probability: Mapped[Decimal] = mapped_column(Numeric(5, 4, asdecimal=True))
    # [{"feature", "bin", "points"}, ...], most points first.
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    features: Mapped[dict[str, int]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
