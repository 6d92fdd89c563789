from __future__ import annotations

from api.core.errors import DomainError, Invalid, NotFound, Unauthorized


class BadSignature(Unauthorized):
    """The webhook signature is missing or does not match the body."""

    code = "bad_signature"


class StaleSignature(Unauthorized):
    """The webhook was signed more than the allowed window ago (or in the future): a replay."""

    code = "stale_signature"


class PayloadTooLarge(DomainError):
    """The webhook body is larger than any payment confirmation."""

    status_code = 413
    code = "payload_too_large"


class UnknownAccount(NotFound):
    """No loan has this account reference."""

    code = "unknown_account"


class CurrencyMismatch(Invalid):
    """The payment's currency is not the loan's currency."""

    code = "currency_mismatch"


class PaymentAmountNotPositive(Invalid):
    """A payment must be more than zero."""

    code = "amount_not_positive"
