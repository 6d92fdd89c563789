"""The confidence intervals of the holdout lift, against published worked examples."""

from __future__ import annotations

import pytest

from api.kpis.intervals import newcombe, wilson


def test_wilson_matches_newcombes_single_proportion_example() -> None:
    # Newcombe 1998 (Stat. Med. 17:857-872), 81/263: score interval 0.2553 to 0.3662.
    low, high = wilson(81, 263) or (0.0, 0.0)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_wilson_stays_inside_zero_and_one_when_nothing_or_everything_happened() -> None:
    assert wilson(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert wilson(10, 10) == (pytest.approx(0.7225, abs=1e-4), 1.0)
    assert wilson(0, 0) is None


def test_newcombe_matches_the_published_difference_example() -> None:
    # Newcombe 1998 (Stat. Med. 17:873-890), method 10: 56/70 - 48/80 = 0.2000,
    # 95 % interval 0.0524 to 0.3339.
    difference, low, high = newcombe(56, 70, 48, 80) or (0.0, 0.0, 0.0)
    assert (round(difference, 4), round(low, 4), round(high, 4)) == (0.2, 0.0524, 0.3339)


def test_newcombe_needs_both_arms() -> None:
    assert newcombe(3, 10, 0, 0) is None
