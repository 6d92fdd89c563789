"""Small, fast draws from the seed's generator and the numbers that look random but are not.

These run millions of times per seed, so they skip the argument checks of ``random``'s own
methods; the order in which the generator calls them fixes the seeded data.
"""

from __future__ import annotations

import random
from typing import Any

B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

_TOTALS: dict[tuple[tuple[Any, int], ...], int] = {}


def encode(value: int, alphabet: str, width: int) -> str:
    base = len(alphabet)
    out = []
    for _ in range(width):
        value, digit = divmod(value, base)
        out.append(alphabet[digit])
    return "".join(reversed(out))


def scramble(index: int, modulus: int, multiplier: int, shift: int = 12345) -> int:
    """A bijection of ``range(modulus)`` that makes sequential numbers look random.

    ``multiplier`` must be coprime with ``modulus``; ``shift`` (drawn from the seed) makes
    another seed give other numbers.
    """
    return (index * multiplier + shift) % modulus


def randint(rng: random.Random, low: int, high: int) -> int:
    """``rng.randint`` without its argument checks: it runs millions of times per seed."""
    return low + int(rng.random() * (high - low + 1))


def below(rng: random.Random, n: int) -> int:
    return int(rng.random() * n)


def pick(rng: random.Random, weighted: tuple[tuple[Any, int], ...]) -> Any:
    """One value of ``(value, weight)`` pairs, drawn with one ``rng.random()``."""
    total = _TOTALS.get(weighted)
    if total is None:
        total = _TOTALS[weighted] = sum(w for _, w in weighted)
    mark = rng.random() * total
    for value, weight in weighted:
        mark -= weight
        if mark < 0:
            return value
    return weighted[-1][0]


def money(units: int) -> str:
    return f"{units}.00"
