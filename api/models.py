"""Every table, imported once so that metadata (Alembic, tests) sees the whole schema."""

from api.borrowers.models import Borrower, Channel, ChannelIdentity, ChatAlias, Consent
from api.branches.models import BorrowerGroup, Branch, Officer, OfficerBranch, StaffRole
from api.cases.models import Case, CaseKind, CaseNote, CaseOutcome, CaseStatus, LoanCall
from api.console.models import ConsoleSession, LoginAttempt
from api.core.db import Base
from api.inbox.models import InboxMessage, InboxStatus
from api.ledger.models import ContactEvent
from api.loans.models import Frequency, Installment, InstallmentStatus, Loan, LoanStatus
from api.outbox.models import DeadLetter, DeadLetterReason, OutboxMessage, OutboxStatus
from api.payments.models import Payment, PaymentAllocation
from api.promises.models import PromiseStatus, PromiseToPay
from api.risk.models import RiskScore, RiskScorecard

__all__ = [
    "Base",
    "Borrower",
    "BorrowerGroup",
    "Branch",
    "Case",
    "CaseKind",
    "CaseNote",
    "CaseOutcome",
    "CaseStatus",
    "Channel",
    "ChannelIdentity",
    "ChatAlias",
    "Consent",
    "ConsoleSession",
    "ContactEvent",
    "DeadLetter",
    "DeadLetterReason",
    "Frequency",
    "InboxMessage",
    "InboxStatus",
    "Installment",
    "InstallmentStatus",
    "Loan",
    "LoanCall",
    "LoanStatus",
    "LoginAttempt",
    "Officer",
    "OfficerBranch",
    "OutboxMessage",
    "OutboxStatus",
    "Payment",
    "PaymentAllocation",
    "PromiseStatus",
    "PromiseToPay",
    "RiskScore",
    "RiskScorecard",
    "StaffRole",
]
