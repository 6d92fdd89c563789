"""The scorecard's arithmetic: bins, points, probability and reason codes, worked by hand."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from api.risk.fit import NotEnoughHistory, evaluate, fit_scorecard
from api.risk.scorecard import PDO, Reason, Scorecard, bin_index, bin_label

CARD = Scorecard(
    base_log_odds=-2.0,
    points={
        "days_past_due": [0, 10, 30, 50, 70, 90],
        "late_installments": [0, 5, 10, 20],
        "partial_payments": [0, 8, 12],
        "broken_promises": [0, 15, 25],
        "unanswered_reminders": [0, 3, 6],
        "hardship_cases": [0, 12],
        "loan_cycle": [6, 4, 2, 0],
    },
)


def test_bins_and_their_labels() -> None:
    # Edges 1, 8, 31, 61, 91: 0 | 1-7 | 8-30 | 31-60 | 61-90 | 91+.
    assert [bin_index("days_past_due", d) for d in (0, 1, 7, 8, 30, 31, 90, 91, 400)] == [
        0,
        1,
        1,
        2,
        2,
        3,
        4,
        5,
        5,
    ]
    assert [bin_label("days_past_due", i) for i in range(6)] == [
        "0",
        "1-7",
        "8-30",
        "31-60",
        "61-90",
        "91+",
    ]
    assert [bin_label("loan_cycle", i) for i in range(4)] == ["1", "2", "3-4", "5+"]


def test_points_probability_and_the_three_reasons() -> None:
    features = {
        "days_past_due": 12,  # 8-30: 30
        "late_installments": 2,  # 2: 10
        "partial_payments": 1,  # 1: 8
        "broken_promises": 1,  # 1: 15
        "unanswered_reminders": 0,  # 0: 0
        "hardship_cases": 1,  # 1+: 12
        "loan_cycle": 1,  # 1: 6
    }
    score = CARD.score(features)

    # 30 + 10 + 8 + 15 + 0 + 12 + 6 = 81; log-odds -2 + 81 ln 2 / 20 = 0.8073 -> 0.691522.
    assert score.points == 81
    assert score.probability == Decimal("0.6915")
    assert score.reasons == [
        Reason("days_past_due", "8-30", 30),
        Reason("broken_promises", "1", 15),
        Reason("hardship_cases", "1+", 12),
    ]


def test_a_loan_in_every_safest_bin_has_no_reason() -> None:
    safest = dict.fromkeys(CARD.points, 0) | {"loan_cycle": 5}

    score = CARD.score(safest)

    assert (score.points, score.reasons) == (0, [])
    assert score.probability == Decimal("0.1192")  # 1 / (1 + e^2)


def test_points_from_coefficients_put_each_feature_s_safest_bin_at_zero() -> None:
    factor = PDO / math.log(2)  # 28.85 points per unit of log-odds
    card = Scorecard.from_coefficients(
        -1.0, {"days_past_due": [0.0, 0.5, 1.0, 1.0, 1.0, 1.0], "hardship_cases": [0.0, -0.3]}
    )

    # 0.5 * 28.85 = 14.4 -> 14; 1.0 -> 29; hardship's safest bin is 1+ (-0.3): 0.3 -> 9.
    assert card.points == {"days_past_due": [0, 14, 29, 29, 29, 29], "hardship_cases": [9, 0]}
    assert card.base_log_odds == pytest.approx(-1.3)
    assert round(0.3 * factor) == 9
    assert Scorecard.from_json(card.to_json()) == card


def test_the_fit_gives_more_points_to_the_bins_that_go_wrong_more() -> None:
    rows = [dict.fromkeys(CARD.points, 0) | {"loan_cycle": 1} for _ in range(200)]
    for k, row in enumerate(rows):
        row["days_past_due"] = (0, 3, 40)[k % 3]
    labels = [row["days_past_due"] == 40 or k % 10 == 0 for k, row in enumerate(rows)]

    card = fit_scorecard(rows, labels, features=("days_past_due",))

    # 31-60 days went wrong every time, 0 and 1-7 one time in ten.
    points = card.points["days_past_due"]
    assert min(points) == 0
    assert points[3] > max(points[0], points[1]) + 20
    with pytest.raises(NotEnoughHistory):
        fit_scorecard(rows, [False] * len(rows))


def test_evaluation_of_a_perfect_ordering() -> None:
    result = evaluate([0.1, 0.2, 0.8, 0.9], [False, False, True, True])

    assert (result.auc, result.ks, result.snapshots, result.events) == (1.0, 1.0, 4, 2)
    # Brier: the mean of 0.1², 0.2², 0.2², 0.1².
    assert result.brier == pytest.approx(0.025)
    assert result.calibration_gap == pytest.approx(0.2)
    assert [(b.snapshots, b.observed) for b in result.calibration] == [
        (1, 0.0),
        (1, 0.0),
        (1, 1.0),
        (1, 1.0),
    ]
