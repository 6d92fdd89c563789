from __future__ import annotations

from api.core.errors import Conflict, Invalid, NotFound


class WeakPassword(Invalid):
    """The password is too short."""

    code = "weak_password"


class EmailTaken(Conflict):
    """Another member of staff already signs in with this email."""

    code = "email_taken"


class UnknownBranch(NotFound):
    """No branch has this code."""

    code = "unknown_branch"


class OneBranchOnly(Invalid):
    """Only a manager oversees more than one branch."""

    code = "one_branch_only"


class OutsideScope(NotFound):
    """A queue filter names a branch or officer outside the signed-in officer's scope, or a
    value the form does not offer: answered like a missing page, so nothing can be probed."""

    code = "outside_scope"
