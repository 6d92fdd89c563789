from __future__ import annotations

from api.core.errors import Conflict, Invalid


class PromiseAmountNotPositive(Invalid):
    """A promise must be for more than zero."""

    code = "amount_not_positive"


class PromiseAmountAboveOutstanding(Invalid):
    """The promise is for more than the loan's outstanding balance."""

    code = "amount_above_outstanding"


class PromiseDateInPast(Invalid):
    """The promised date is before today (in the borrower's time zone)."""

    code = "date_in_past"


class PromiseDateBeyondPolicy(Invalid):
    """The promised date is later than the policy allows."""

    code = "date_beyond_policy"


class IdempotencyKeyReused(Conflict):
    """This Idempotency-Key was already used for a different request."""

    code = "idempotency_key_reused"
