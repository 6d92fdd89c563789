"""Fitting the scorecard (scikit-learn logistic regression on the bins) and judging it.

Each feature is one-hot encoded over its bins, the first bin left out as the reference (its
coefficient is 0), so a coefficient is the change in log-odds of that bin against the first.
A mild L2 penalty keeps bins that hardly occur from taking extreme points.

scikit-learn rather than optbinning's ``Scorecard``: optbinning 1.0.0 needs scikit-learn as
well, plus pandas, OR-Tools and ropwr (CVXPY) for its optimal binning, which the few fixed bins
an officer can read (:data:`api.risk.scorecard.EDGES`) do not need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

from api.risk.features import FEATURES
from api.risk.scorecard import EDGES, Scorecard, bin_index

CALIBRATION_BINS = 10


class NotEnoughHistory(ValueError):
    """The history has no snapshot of one outcome: nothing to tell apart."""


def design(rows: Sequence[dict[str, int]], features: Sequence[str]) -> np.ndarray:
    """One column per bin after each feature's first, 1 where the row falls in it."""
    columns = [(name, index) for name in features for index in range(1, len(EDGES[name]) + 1)]
    matrix = np.zeros((len(rows), len(columns)))
    for r, row in enumerate(rows):
        for c, (name, index) in enumerate(columns):
            matrix[r, c] = bin_index(name, row[name]) == index
    return matrix


def fit_scorecard(
    rows: Sequence[dict[str, int]],
    labels: Sequence[bool],
    *,
    features: Sequence[str] = FEATURES,
    penalty_c: float = 1.0,
) -> Scorecard:
    """The scorecard that predicts ``labels`` (went wrong) from the features of ``rows``.

    Raises:
        NotEnoughHistory: every label is the same (or there are none).
    """
    if len(set(labels)) < 2:
        raise NotEnoughHistory("the history needs loans that went wrong and loans that did not")
    model = LogisticRegression(C=penalty_c, max_iter=1000)
    model.fit(design(rows, features), np.asarray(labels, dtype=int))
    weights = iter(model.coef_[0].tolist())
    coefficients = {name: [0.0, *(next(weights) for _ in EDGES[name])] for name in features}
    return Scorecard.from_coefficients(float(model.intercept_[0]), coefficients)


@dataclass(frozen=True)
class CalibrationBin:
    snapshots: int
    predicted: float  # mean predicted probability
    observed: float  # share that went wrong


@dataclass(frozen=True)
class Evaluation:
    snapshots: int
    events: int
    auc: float
    ks: float  # the largest gap between the true- and false-positive rates
    brier: float  # mean squared gap between the probability and what happened (0 or 1)
    calibration: list[CalibrationBin]

    @property
    def calibration_gap(self) -> float:
        """The largest gap between predicted and observed rates over the deciles."""
        return max(abs(b.predicted - b.observed) for b in self.calibration)


def evaluate(probabilities: Sequence[float], labels: Sequence[bool]) -> Evaluation:
    """AUC, KS, Brier score and calibration over deciles of the predicted probability.

    Raises:
        NotEnoughHistory: every label is the same.
    """
    if len(set(labels)) < 2:
        raise NotEnoughHistory("the test period needs both outcomes")
    y = np.asarray(labels, dtype=int)
    p = np.asarray(probabilities, dtype=float)
    false_positive, true_positive, _ = roc_curve(y, p)
    order = np.argsort(p, kind="stable")
    calibration = [
        CalibrationBin(len(part), float(p[part].mean()), float(y[part].mean()))
        for part in np.array_split(order, min(CALIBRATION_BINS, len(order)))
        if len(part)
    ]
    return Evaluation(
        snapshots=len(y),
        events=int(y.sum()),
        auc=float(roc_auc_score(y, p)),
        ks=float(np.max(true_positive - false_positive)),
        brier=float(brier_score_loss(y, p)),
        calibration=calibration,
    )
