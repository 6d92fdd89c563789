from __future__ import annotations

from typing import ClassVar

from api.core.errors import Conflict, DomainError, Forbidden, Invalid, NotFound


class VerificationRequired(Forbidden):
    """This chat must verify (again) before it sees account data."""

    code = "verification_required"


class VerificationFailed(DomainError):
    """The phone and the answer do not match our records."""

    status_code: ClassVar[int] = 401
    code: ClassVar[str] = "verification_failed"


class IdentityLocked(DomainError):
    """Too many failed attempts: verification is locked for a while (``held``: until an
    officer unlocks it)."""

    status_code: ClassVar[int] = 423
    code: ClassVar[str] = "locked"


class VerificationNotStarted(Conflict):
    """Start verification (with a proven phone) before answering the question."""

    code = "verification_not_started"


class PhoneRequired(Invalid):
    """A proven phone number is needed to start verification."""

    code = "phone_required"


class InvalidPhone(Invalid):
    """The phone number is not a valid international (E.164) number."""

    code = "invalid_phone"


class UnsupportedLocale(Invalid):
    """Kopa does not speak this language."""

    code = "unsupported_locale"


class ChatNotRegistered(NotFound):
    """A chat pseudonym the gateway never registered."""

    code = "chat_not_registered"


class FactorNotOffered(Conflict):
    """Answer one of the factors this check offered (nothing was counted)."""

    code = "factor_not_offered"


class IdentityNotFound(NotFound):
    """No such chat."""

    code = "identity_not_found"
