from __future__ import annotations

from api.core.errors import Conflict, Forbidden, Invalid, NotFound


class CaseNotFound(NotFound):
    """No case has this reference."""

    code = "case_not_found"


class OfficerNotFound(NotFound):
    """No officer or manager uses this chat."""

    code = "officer_not_found"


class NotCaseOfficer(Forbidden):
    """Only the assigned officer or the branch manager may act on this case."""

    code = "not_case_officer"


class CaseClosed(Conflict):
    """The case is already resolved."""

    code = "case_closed"


class OutcomeRequired(Invalid):
    """Resolving a case needs an outcome."""

    code = "outcome_required"


class NoOfficer(Conflict):
    """Nobody at the borrower's branch can take the case."""

    code = "no_officer"


class CaseIdempotencyKeyReused(Conflict):
    """This Idempotency-Key was already used for a different request."""

    code = "idempotency_key_reused"
