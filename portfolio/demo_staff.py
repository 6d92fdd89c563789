"""Console accounts for the demo branches, so that ``kopa demo`` shows the officers' side too.

An officer of each demo branch sees that branch's cases in the console queue (a hardship message
typed in the demo chat opens one); the manager oversees all three and also gets the dashboard.
They are made by :func:`api.console.auth.add_officer`, as ``kopa officers add`` makes staff, on
an ``.example`` domain that no real address uses. The password is the caller's: every run of the
demo sets it again, on these accounts only.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.branches.models import Officer, StaffRole
from api.console import auth
from api.core.config import ConsolePolicy
from portfolio.demo import DEMO_BRANCHES

# The chat's cases are assigned to the branch's chat officer (portfolio/demo.py), whom only they,
# a manager or an admin may act for: the demo officers see the cases, the manager can work them.
DEMO_MANAGER = auth.NewStaff(
    "manager@kopa-demo.example",
    "Samuel Demo",
    StaffRole.manager,
    tuple(branch.code for branch in DEMO_BRANCHES),
)
DEMO_STAFF = (
    auth.NewStaff(
        "officer.nbo@kopa-demo.example", "Wanjiru Demo", StaffRole.officer, ("DEMO-NBO",)
    ),
    auth.NewStaff(
        "officer.dkr@kopa-demo.example", "Fatou Demo", StaffRole.officer, ("DEMO-DKR",), "fr"
    ),
    auth.NewStaff(
        "officer.mex@kopa-demo.example", "Rosa Demo", StaffRole.officer, ("DEMO-MEX",), "es"
    ),
    DEMO_MANAGER,
)


def officer_of(branch_code: str) -> auth.NewStaff:
    """The demo officer account of a demo branch."""
    return next(
        s for s in DEMO_STAFF if s.role is StaffRole.officer and branch_code in s.branch_codes
    )


def ensure_demo_staff(
    session: Session, *, password: str, policy: ConsolePolicy
) -> tuple[auth.NewStaff, ...]:
    """Create the demo staff accounts, or give those already there ``password`` (the demo
    branches must exist). The caller commits.

    Raises:
        WeakPassword: ``password`` is shorter than the console's policy allows.
    """
    for staff in DEMO_STAFF:
        officer = session.scalar(select(Officer).where(Officer.email == staff.email))
        if officer is None:
            auth.add_officer(session=session, staff=staff, password=password, policy=policy)
        else:
            auth.reset_password(session=session, officer=officer, password=password, policy=policy)
    return DEMO_STAFF
