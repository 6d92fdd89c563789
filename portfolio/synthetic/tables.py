"""The tables the synthetic portfolio fills, in the order they are written, and their shapes."""

from __future__ import annotations

from api.models import Base
from portfolio.bulk import Shape
from portfolio.history import ALLOCATION, INSTALLMENT

# Marks every row the seed writes, so that a second seed can tell the database is taken.
EXTERNAL_PREFIX = "SYN-"

# Parents before children, so foreign keys hold after every chunk.
TABLE_ORDER = (
    "branch",
    "branch_officer",
    "branch_group",
    "borrower",
    "borrower_consent",
    "loan",
    "loan_installment",
    "payment",
    "payment_allocation",
    "promise_to_pay",
    "case",
    "contact_event",
)
# Columns come from the models' tables; the seed writes every one, created_at included. The
# money state of schedules is written as the importer writes it (portfolio.history).
SHAPES = {name: Shape(Base.metadata.tables[name]) for name in TABLE_ORDER} | {
    INSTALLMENT.table: INSTALLMENT,
    ALLOCATION.table: ALLOCATION,
}
