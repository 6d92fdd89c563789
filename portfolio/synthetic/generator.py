"""The synthetic portfolio drawn chunk by chunk: branches first, then borrowers one by one."""

from __future__ import annotations

from collections.abc import Iterator

from portfolio.bulk import Row
from portfolio.synthetic.borrowers import draw_borrower
from portfolio.synthetic.branches import draw_branches
from portfolio.synthetic.state import Branch, DrawState


class PortfolioGenerator(DrawState):
    """Draws the portfolio; :meth:`chunks` yields rows per table for a slice of borrowers."""

    branches: list[Branch]
    per_branch: list[int]

    def setup(self) -> None:
        """Branches with their officers, manager and groups, sized for the borrower count."""
        self.branches, self.per_branch = draw_branches(self)

    def chunks(self, size: int) -> Iterator[tuple[int, dict[str, list[Row]]]]:
        """Yield ``(borrowers in chunk, rows per table)``; the first chunk carries branches."""
        self.setup()
        done = 0
        for branch, count in zip(self.branches, self.per_branch, strict=True):
            for _ in range(count):
                draw_borrower(self, branch)
                done += 1
                if done % size == 0:
                    yield size, self.flush()
        if done % size or not done:
            yield done % size, self.flush()
