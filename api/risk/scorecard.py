"""The points scorecard: fixed bins per feature, points per bin, reason codes. Pure.

Bins are fixed and few, so an officer can read the card: a feature's value falls in the bin
whose lower edge is the largest not above it. Each bin's points are its logistic-regression
coefficient (:mod:`api.risk.fit`) less the feature's lowest one, times ``PDO / ln 2``: every
feature's safest bin scores 0 and the odds of going wrong double every ``PDO`` points. The
reasons of a score are the (at most) three features that added most points, ties in the order
of :data:`api.risk.features.FEATURES`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

PDO = 20
REASONS = 3
# Officers read a score as a band: the lowest probability of going wrong of each, highest first.
BANDS: tuple[tuple[str, Decimal], ...] = (("high", Decimal("0.40")), ("medium", Decimal("0.15")))
LOWEST_BAND = "low"

# Per feature, the lower edges of its bins after the first (which starts at 0 or 1).
EDGES: dict[str, tuple[int, ...]] = {
    "days_past_due": (1, 8, 31, 61, 91),
    "late_installments": (1, 2, 3),
    "partial_payments": (1, 2),
    "broken_promises": (1, 2),
    "unanswered_reminders": (1, 2),
    "hardship_cases": (1,),
    "loan_cycle": (2, 3, 5),
}


def bin_index(feature: str, value: int) -> int:
    return bisect_right(EDGES[feature], value)


def bin_label(feature: str, index: int) -> str:
    """A bin as officers read it: ``0``, ``1-7``, ``91+``."""
    edges = EDGES[feature]
    low = edges[index - 1] if index else (1 if feature == "loan_cycle" else 0)
    if index == len(edges):
        return f"{low}+"
    high = edges[index] - 1
    return str(low) if high == low else f"{low}-{high}"


def band(probability: Decimal) -> str:
    """``high``, ``medium`` or ``low``: the words an officer sees instead of a probability."""
    return next((name for name, floor in BANDS if probability >= floor), LOWEST_BAND)


@dataclass(frozen=True)
class Reason:
    feature: str
    bin: str
    points: int


@dataclass(frozen=True)
class Score:
    points: int
    probability: Decimal  # of going wrong (api.risk.features.outcome), 4 decimals
    reasons: list[Reason]


@dataclass(frozen=True)
class Scorecard:
    """Points per bin of each feature, and the log-odds of a loan with 0 points."""

    base_log_odds: float
    points: dict[str, list[int]]

    def score(self, features: dict[str, int]) -> Score:
        added = {
            name: (bin_index(name, features[name]), bins[bin_index(name, features[name])])
            for name, bins in self.points.items()
        }
        total = sum(points for _, points in added.values())
        log_odds = self.base_log_odds + total * math.log(2) / PDO
        probability = Decimal(str(1 / (1 + math.exp(-log_odds)))).quantize(Decimal("0.0001"))
        ranked = sorted((name for name in added if added[name][1] > 0), key=lambda n: -added[n][1])
        reasons = [
            Reason(name, bin_label(name, added[name][0]), added[name][1])
            for name in ranked[:REASONS]
        ]
        return Score(total, probability, reasons)

    @classmethod
    def from_coefficients(cls, intercept: float, coefficients: dict[str, list[float]]) -> Scorecard:
        """Points from a logistic regression's intercept and per-bin coefficients."""
        factor = PDO / math.log(2)
        floors = {name: min(values) for name, values in coefficients.items()}
        return cls(
            base_log_odds=intercept + sum(floors.values()),
            points={
                name: [round((value - floors[name]) * factor) for value in values]
                for name, values in coefficients.items()
            },
        )

    def to_json(self) -> dict[str, Any]:
        return {"pdo": PDO, "base_log_odds": self.base_log_odds, "points": self.points}

    @classmethod
    def from_json(cls, card: dict[str, Any]) -> Scorecard:
        return cls(base_log_odds=float(card["base_log_odds"]), points=card["points"])

    def table(self) -> list[tuple[str, str, int]]:
        """(feature, bin, points) rows: the card as printed for officers."""
        return [
            (name, bin_label(name, index), points)
            for name, bins in self.points.items()
            for index, points in enumerate(bins)
        ]
