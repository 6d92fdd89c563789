"""A realistic synthetic portfolio, reproducible from a seed and a reference day.

Everything is drawn from one ``random.Random(seed)`` in a fixed order, and every date is relative
to ``today``: the same seed and day give the same rows, ids included, in an empty database.
Rows go to the database through :class:`portfolio.bulk.BulkWriter` in chunks of borrowers,
so 100000 borrowers (a few million rows) take seconds, not hours.

The parts, in the order they draw: :mod:`.branches` (branches, staff, groups),
:mod:`.borrowers` (people, consents and their repayment discipline), :mod:`.loans` (loans,
schedules, payments, cases, the contact ledger) and :mod:`.repayment` (each loan's history, drawn
from the borrower's discipline: the structure planted for the risk scorecard is described
there), all sharing one :class:`.state.DrawState` and the helpers of :mod:`.draws`;
:mod:`.generator` yields their rows in chunks and :mod:`.seed`
writes them to a database (the tables and their order: :mod:`.tables`).
"""
