"""Which arm of the reminder holdout a borrower is in (see :class:`api.core.config.HoldoutPolicy`).

The arm is a pure function of the salt and the borrower's id, so the notifier (which withholds
reminders) and the KPIs (which compare the arms) agree without storing anything, and a borrower
never changes arm while the salt and share stay the same. SHA-256 rather than Python's ``hash``,
which is salted per process.
"""

from __future__ import annotations

import hashlib

from api.core.config import HoldoutPolicy

_SCALE = float(2**64)


def position(borrower_id: int, salt: str) -> float:
    """The borrower's place in [0, 1): the first 8 bytes of SHA-256("<salt>:<id>") over 2**64."""
    digest = hashlib.sha256(f"{salt}:{borrower_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def in_holdout(borrower_id: int, policy: HoldoutPolicy) -> bool:
    """Whether the borrower is in the holdout: their place is below the policy's share."""
    return policy.share > 0 and position(borrower_id, policy.salt) < policy.share
