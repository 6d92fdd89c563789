"""95 % confidence intervals of a proportion and of a difference of two proportions.

Plain math (``statistics.NormalDist`` for the normal quantile): SciPy, which the lock file
has, offers the Wilson interval only through ``binomtest`` one proportion at a time and no
interval for a difference, and statsmodels is not a dependency.

- :func:`wilson`: the Wilson score interval (Wilson 1927), which stays inside [0, 1] and keeps
  close to its nominal coverage with few observations or a rate near 0 or 1, where the Wald
  interval ``p ± z·sqrt(p(1-p)/n)`` collapses to a point.
- :func:`newcombe`: Newcombe's hybrid score interval for ``p1 - p2`` (Newcombe 1998, *Stat.
  Med.* 17:873-890, method 10), built from the two Wilson intervals. Its worked example,
  56/70 vs 48/80, gives 0.2000 [0.0524, 0.3339] (tests/api/test_kpi_intervals.py).
"""

from __future__ import annotations

import math
from statistics import NormalDist

CONFIDENCE = 0.95
Z = NormalDist().inv_cdf(1 - (1 - CONFIDENCE) / 2)  # 1.959964...


def wilson(successes: int, trials: int, z: float = Z) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes / trials``; None when there are no trials."""
    if trials <= 0:
        return None
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    # At 0 or n successes the bound is exactly 0 or 1; floating point leaves 1e-17 off it.
    low = 0.0 if successes == 0 else centre - half
    high = 1.0 if successes == trials else centre + half
    return low, high


def newcombe(
    successes1: int, trials1: int, successes2: int, trials2: int, z: float = Z
) -> tuple[float, float, float] | None:
    """``(p1 - p2, low, high)``: the difference and its hybrid score interval; None when an
    arm has no trials."""
    first, second = wilson(successes1, trials1, z), wilson(successes2, trials2, z)
    if first is None or second is None:
        return None
    p1, p2 = successes1 / trials1, successes2 / trials2
    (l1, u1), (l2, u2) = first, second
    difference = p1 - p2
    low = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return difference, low, high
