from __future__ import annotations

from api.core.errors import NotFound


class LoanNotFound(NotFound):
    """No such loan for this borrower."""

    # Same code as a loan that does not exist at all: another borrower's id must reveal nothing.
    code = "not_found"


class NoActiveLoan(NotFound):
    """This borrower has no loan with money outstanding."""

    code = "no_active_loan"
