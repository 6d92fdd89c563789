"""Which branches a member of staff answers for."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.branches.models import Officer, OfficerBranch, StaffRole


def branch_scope(session: Session, officer: Officer) -> frozenset[int] | None:
    """The ids of the branches ``officer`` may see; None means every branch (an admin).

    An officer sees their own branch; a manager theirs and every branch they oversee.
    """
    if officer.role is StaffRole.admin:
        return None
    if officer.role is StaffRole.officer:
        return frozenset({officer.branch_id})
    overseen = session.scalars(
        select(OfficerBranch.branch_id).where(OfficerBranch.officer_id == officer.id)
    )
    return frozenset({officer.branch_id, *overseen})


def in_scope(session: Session, officer: Officer, branch_id: int) -> bool:
    scope = branch_scope(session, officer)
    return scope is None or branch_id in scope
