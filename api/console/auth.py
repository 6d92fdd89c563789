"""Officers' accounts, sign-in and sessions of the web console.

Passwords are Argon2id hashes (argon2-cffi's defaults, RFC 9106's second recommended set). A
wrong password counts towards the account's lockout; every attempt is recorded, and an address
with too many recent failures is refused before any password is checked. Sessions live in the
database: the cookie carries a random id, the table only its SHA-256.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from api.branches.models import Branch, Officer, OfficerBranch, StaffRole
from api.console.exceptions import EmailTaken, OneBranchOnly, UnknownBranch, WeakPassword
from api.console.models import ConsoleSession, LoginAttempt
from api.core.config import ConsolePolicy

_HASHER = PasswordHasher()
_COUNTED_FAILURES = ("bad_credentials", "locked")


class SignIn(enum.StrEnum):
    ok = "ok"
    bad_credentials = "bad_credentials"
    locked = "locked"
    rate_limited = "rate_limited"


@dataclass(frozen=True)
class SignInResult:
    outcome: SignIn
    officer: Officer | None = None
    locked_until: datetime | None = None
    session_token: str | None = None  # the cookie's value, only when ``outcome`` is ok


@dataclass(frozen=True)
class NewStaff:
    email: str
    name: str
    role: StaffRole
    branch_codes: tuple[str, ...]
    locale: str = "en"


def normalize_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str, policy: ConsolePolicy) -> str:
    """Raises: WeakPassword: shorter than the policy allows."""
    if len(password) < policy.min_password_length:
        raise WeakPassword(f"A password needs at least {policy.min_password_length} characters")
    return _HASHER.hash(password)


@cache
def _unknown_account_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def _password_matches(stored: str | None, password: str) -> bool:
    # An unknown email costs the same hash as a known one, so timing does not tell them apart.
    try:
        return _HASHER.verify(stored or _unknown_account_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def add_officer(
    *, session: Session, staff: NewStaff, password: str, policy: ConsolePolicy
) -> Officer:
    """Create a member of staff who can sign in; a manager may oversee several branches.

    Raises:
        WeakPassword, EmailTaken, UnknownBranch, OneBranchOnly.
    """
    if len(staff.branch_codes) != 1 and staff.role is not StaffRole.manager:
        raise OneBranchOnly()
    email = normalize_email(staff.email)
    if session.scalar(select(Officer.id).where(Officer.email == email)) is not None:
        raise EmailTaken()
    branches = []
    for code in staff.branch_codes:
        branch = session.scalar(select(Branch).where(Branch.code == code))
        if branch is None:
            raise UnknownBranch(f"No branch has the code {code!r}")
        branches.append(branch)
    officer = Officer(
        branch_id=branches[0].id,
        name=staff.name,
        role=staff.role,
        locale=staff.locale,
        email=email,
        password_hash=hash_password(password, policy),
        failed_logins=0,
    )
    session.add(officer)
    session.flush()
    session.add_all(OfficerBranch(officer_id=officer.id, branch_id=b.id) for b in branches[1:])
    session.flush()
    return officer


def reset_password(
    *, session: Session, officer: Officer, password: str, policy: ConsolePolicy
) -> None:
    """Give ``officer`` a new password: a lockout is lifted, and whoever signed in with the old
    one is signed out (their sessions end).

    Raises:
        WeakPassword.
    """
    officer.password_hash = hash_password(password, policy)
    officer.failed_logins = 0
    officer.locked_until = None
    session.execute(delete(ConsoleSession).where(ConsoleSession.officer_id == officer.id))
    session.flush()


def _recent_failures(session: Session, address: str, now: datetime, policy: ConsolePolicy) -> int:
    since = now - timedelta(minutes=policy.address_window_minutes)
    count = session.scalar(
        select(func.count())
        .select_from(LoginAttempt)
        .where(
            LoginAttempt.address == address,
            LoginAttempt.at > since,
            LoginAttempt.result.in_(_COUNTED_FAILURES),
        )
    )
    return int(count or 0)


def _attempt(
    session: Session, *, result: SignInResult, email: str, address: str, now: datetime
) -> SignInResult:
    session.add(
        LoginAttempt(
            at=now,
            address=address,
            email=email[:254],
            officer_id=result.officer.id if result.officer else None,
            result=result.outcome.value,
        )
    )
    session.flush()
    return result


def sign_in(
    *,
    session: Session,
    email: str,
    password: str,
    address: str,
    now: datetime,
    policy: ConsolePolicy,
) -> SignInResult:
    """Check a sign-in, count a failure or open a session; every attempt is recorded."""
    email = normalize_email(email)
    officer = session.scalar(select(Officer).where(Officer.email == email))
    if _recent_failures(session, address, now, policy) >= policy.failures_per_address:
        refused = SignInResult(SignIn.rate_limited, officer)
        return _attempt(session, result=refused, email=email, address=address, now=now)
    if officer is not None and officer.locked_until is not None and officer.locked_until > now:
        locked = SignInResult(SignIn.locked, officer, officer.locked_until)
        return _attempt(session, result=locked, email=email, address=address, now=now)
    stored = officer.password_hash if officer is not None else None
    if officer is None or not _password_matches(stored, password):
        result = _count_failure(officer, now, policy)
        return _attempt(session, result=result, email=email, address=address, now=now)
    officer.failed_logins = 0
    officer.locked_until = None
    if stored is not None and _HASHER.check_needs_rehash(stored):
        officer.password_hash = _HASHER.hash(password)
    token = start_session(session=session, officer=officer, now=now, policy=policy)
    opened = SignInResult(SignIn.ok, officer, session_token=token)
    return _attempt(session, result=opened, email=email, address=address, now=now)


def _count_failure(officer: Officer | None, now: datetime, policy: ConsolePolicy) -> SignInResult:
    if officer is None:
        return SignInResult(SignIn.bad_credentials)
    officer.failed_logins += 1
    if officer.failed_logins < policy.max_failures:
        return SignInResult(SignIn.bad_credentials, officer)
    officer.failed_logins = 0
    officer.locked_until = now + timedelta(minutes=policy.lockout_minutes)
    return SignInResult(SignIn.locked, officer, officer.locked_until)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    *, session: Session, officer: Officer, now: datetime, policy: ConsolePolicy
) -> str:
    """Open a session and answer the cookie's value; the officer's expired sessions go."""
    session.execute(
        delete(ConsoleSession).where(
            ConsoleSession.officer_id == officer.id, ConsoleSession.expires_at <= now
        )
    )
    token = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            id_hash=_digest(token),
            officer_id=officer.id,
            csrf_token=new_csrf_token(),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=policy.session_max_hours),
        )
    )
    session.flush()
    return token


def current_session(
    *, session: Session, token: str | None, now: datetime, policy: ConsolePolicy
) -> tuple[ConsoleSession, Officer] | None:
    """The live session behind a cookie and its officer; None when unknown, idle or expired."""
    if not token:
        return None
    row = session.get(ConsoleSession, _digest(token))
    if row is None:
        return None
    idle = timedelta(minutes=policy.session_idle_minutes)
    if row.expires_at <= now or row.last_seen_at + idle <= now:
        return None
    row.last_seen_at = now
    return row, session.get_one(Officer, row.officer_id)


def end_session(*, session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(ConsoleSession).where(ConsoleSession.id_hash == _digest(token)))


def forget_old(
    *, session: Session, now: datetime, idle_before: datetime, attempts_before: datetime
) -> tuple[int, int]:
    """Delete the sessions that have ended (past their absolute expiry, or unused since
    ``idle_before``: no cookie opens them again, and sign-in clears only the signing officer's)
    and the sign-in attempts older than ``attempts_before``; answer how many of each. For the
    retention job."""
    ended = or_(ConsoleSession.expires_at <= now, ConsoleSession.last_seen_at < idle_before)
    sessions = session.execute(delete(ConsoleSession).where(ended))
    attempts = session.execute(delete(LoginAttempt).where(LoginAttempt.at < attempts_before))
    return (
        int(sessions.rowcount or 0),  # type: ignore[attr-defined]
        int(attempts.rowcount or 0),  # type: ignore[attr-defined]
    )


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of a form's CSRF token with the expected one."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
