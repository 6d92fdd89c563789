from __future__ import annotations

from api.core.errors import NotFound


class UnknownBranch(NotFound):
    """No branch has this code."""

    code = "unknown_branch"
