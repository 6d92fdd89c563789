"""Cross-file and database checks of an export, and what the database already holds.

:func:`check` reads the rows the files refer to once (keyed as the files key them) and reports
every problem with its file and line; :mod:`portfolio.importer.load` then writes the export.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Row, String, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower
from api.branches.models import Branch, Officer
from api.loans.models import Installment, Loan
from api.payments.models import Payment
from portfolio.importer.validate import ExportSet, Issue

# A row read from the database, its values named by column (``row.id``, ``row.branch_id``).
Stored = Row[*tuple[Any, ...]]
K = TypeVar("K")
Rowish = TypeVar("Rowish")
CHUNK = 5000


@dataclass
class Known:
    """What the database already holds, keyed like the files."""

    branches: dict[str, Branch]
    officers: dict[tuple[str, str], Officer]
    borrowers: dict[str, Stored]  # external id -> row (see _load_known for the columns)
    phones: dict[str, str]  # phone -> borrower external id
    loans: dict[str, Stored]
    accounts: dict[str, str]  # account reference -> loan external id
    installments: dict[tuple[int, int], Stored]  # (loan id, seq) -> row
    payments: dict[str, Stored]  # reference -> (loan_id, amount)


def _first_seen(
    rows: Iterable[Rowish],
    key: Callable[[Rowish], K],
    file: str,
    what: str,
    issues: list[Issue],
    line: Callable[[Rowish], int],
) -> dict[K, Rowish]:
    seen: dict[K, Rowish] = {}
    for row in rows:
        k = key(row)
        if k in seen:
            issues.append(
                Issue(file, line(row), f"duplicate {what} {k!r} (first on line {line(seen[k])})")
            )
        else:
            seen[k] = row
    return seen


def _load_known(session: Session, export: ExportSet) -> Known:
    branches = {b.code: b for b in session.scalars(select(Branch))}
    by_id = {b.id: b.code for b in branches.values()}
    officers = {(by_id[o.branch_id], o.name): o for o in session.scalars(select(Officer))}
    borrower_cols = (
        Borrower.external_id,
        Borrower.id,
        Borrower.branch_id,
        Borrower.officer_id,
        Borrower.full_name,
        Borrower.phone_e164,
        Borrower.dob_hash,
        Borrower.national_id_last4_hash,
    )
    borrowers = {r.external_id: r for r in session.execute(select(*borrower_cols))}
    loan_cols = (
        Loan.external_id,
        Loan.id,
        Loan.borrower_id,
        Loan.account_reference,
        Loan.product,
        Loan.principal,
        Loan.currency,
        Loan.annual_interest_rate,
        Loan.frequency,
        Loan.disbursed_on,
        Loan.status,
        Loan.cycle,
    )
    loans = {r.external_id: r for r in session.execute(select(*loan_cols))}
    wanted = {p.external_reference for p in export.payments}
    payments: dict[str, Stored] = {}
    references = sorted(wanted)
    postgres = session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(references), CHUNK):
        part = references[start : start + CHUNK]
        # One array parameter on PostgreSQL: thousands of IN parameters cost more to send.
        match = (
            Payment.external_reference == any_(bindparam("refs", part, type_=ARRAY(String)))
            if postgres
            else Payment.external_reference.in_(part)
        )
        query = select(Payment.external_reference, Payment.loan_id, Payment.amount).where(match)
        payments.update({r.external_reference: r for r in session.execute(query)})
    installments: dict[tuple[int, int], Stored] = {}
    if loans and export.installments:
        inst_cols = (
            Installment.loan_id,
            Installment.seq,
            Installment.id,
            Installment.due_date,
            Installment.principal_due,
            Installment.interest_due,
            Installment.fees_due,
        )
        installments = {(r.loan_id, r.seq): r for r in session.execute(select(*inst_cols))}
    return Known(
        branches=branches,
        officers=officers,
        borrowers=borrowers,
        phones={str(row.phone_e164): ext for ext, row in borrowers.items()},
        loans=loans,
        accounts={str(row.account_reference): ext for ext, row in loans.items()},
        installments=installments,
        payments=payments,
    )


def check(session: Session, export: ExportSet) -> Known:  # noqa: C901 - the cross-file checks, in file order
    """Cross-file and database checks; adds issues to ``export`` and answers what exists."""
    issues = export.issues
    known = _load_known(session, export)
    line: Callable[[Any], int] = lambda r: r.line  # noqa: E731
    branches = _first_seen(export.branches, lambda b: b.code, "branches.csv", "code", issues, line)
    officers = _first_seen(
        export.officers, lambda o: (o.branch_code, o.name), "officers.csv", "officer", issues, line
    )
    borrowers = _first_seen(
        export.borrowers, lambda b: b.external_id, "borrowers.csv", "external_id", issues, line
    )
    _first_seen(export.borrowers, lambda b: b.phone, "borrowers.csv", "phone", issues, line)
    _first_seen(export.loans, lambda x: x.external_id, "loans.csv", "external_id", issues, line)
    _first_seen(
        export.loans, lambda x: x.account_reference, "loans.csv", "account_reference", issues, line
    )
    _first_seen(
        export.installments,
        lambda i: (i.loan_external_id, i.seq),
        "schedules.csv",
        "installment (loan, seq)",
        issues,
        line,
    )
    _first_seen(
        export.payments,
        lambda p: p.external_reference,
        "payments.csv",
        "external_reference",
        issues,
        line,
    )

    def branch_currency(code: str) -> str | None:
        if code in branches:
            return branches[code].currency
        return known.branches[code].currency if code in known.branches else None

    for o in export.officers:
        if o.branch_code in export.rejected_branches:
            continue
        if o.branch_code not in branches and o.branch_code not in known.branches:
            issues.append(
                Issue(
                    "officers.csv",
                    o.line,
                    f"branch_code {o.branch_code!r} is in neither branches.csv nor the database",
                )
            )
    borrower_branch: dict[str, str | None] = {}
    for b in export.borrowers:
        if b.branch_code in export.rejected_branches:
            continue
        if b.branch_code not in branches and b.branch_code not in known.branches:
            issues.append(
                Issue(
                    "borrowers.csv",
                    b.line,
                    f"branch_code {b.branch_code!r} is in neither branches.csv nor the database",
                )
            )
        if (
            b.officer_name
            and (b.branch_code, b.officer_name) not in officers
            and (b.branch_code, b.officer_name) not in known.officers
        ):
            issues.append(
                Issue(
                    "borrowers.csv",
                    b.line,
                    f"officer_name {b.officer_name!r} is not an officer of {b.branch_code}",
                )
            )
        owner = known.phones.get(b.phone)
        if owner is not None and owner != b.external_id:
            issues.append(
                Issue(
                    "borrowers.csv",
                    b.line,
                    f"phone {b.phone} belongs to borrower {owner!r} in the database",
                )
            )
        borrower_branch[b.external_id] = b.branch_code
    code_of_branch = {branch.id: code for code, branch in known.branches.items()}
    loan_currency: dict[str, str] = {}
    loan_disbursed: dict[str, Any] = {}
    for ext, row in known.loans.items():
        loan_currency[ext], loan_disbursed[ext] = row.currency, row.disbursed_on
    for loan in export.loans:
        if loan.borrower_external_id in borrowers:
            code = borrower_branch.get(loan.borrower_external_id)
        elif loan.borrower_external_id in known.borrowers:
            code = code_of_branch.get(known.borrowers[loan.borrower_external_id].branch_id)
        elif loan.borrower_external_id in export.rejected_borrowers:
            # Already reported on the borrower's line; its loans' rows would only echo it.
            export.rejected_loans.add(loan.external_id)
            continue
        else:
            export.rejected_loans.add(loan.external_id)
            issues.append(
                Issue(
                    "loans.csv",
                    loan.line,
                    f"borrower_external_id "
                    f"{loan.borrower_external_id!r} is in "
                    "neither borrowers.csv nor the database",
                )
            )
            continue
        expected = branch_currency(code) if code else None
        if expected and loan.currency != expected:
            issues.append(
                Issue(
                    "loans.csv",
                    loan.line,
                    f"currency {loan.currency} is not the branch's currency {expected}",
                )
            )
        owner = known.accounts.get(loan.account_reference)
        if owner is not None and owner != loan.external_id:
            issues.append(
                Issue(
                    "loans.csv",
                    loan.line,
                    f"account_reference "
                    f"{loan.account_reference!r} belongs to "
                    f"loan {owner!r} in the database",
                )
            )
        loan_currency[loan.external_id] = loan.currency
        loan_disbursed[loan.external_id] = loan.disbursed_on
    scheduled = {i.loan_external_id for i in export.installments}
    for loan in export.loans:
        if loan.external_id not in known.loans and loan.external_id not in scheduled:
            issues.append(
                Issue(
                    "loans.csv",
                    loan.line,
                    f"loan {loan.external_id!r} has no installments in schedules.csv",
                )
            )
    for inst in export.installments:
        if inst.loan_external_id in export.rejected_loans:
            continue
        if inst.loan_external_id not in loan_currency:
            issues.append(
                Issue(
                    "schedules.csv",
                    inst.line,
                    f"loan_external_id "
                    f"{inst.loan_external_id!r} is in "
                    "neither loans.csv nor the database",
                )
            )
        elif inst.due_date <= loan_disbursed[inst.loan_external_id]:
            issues.append(
                Issue(
                    "schedules.csv",
                    inst.line,
                    f"due_date {inst.due_date} is not after the loan's disbursement",
                )
            )
    now = datetime.now(UTC)
    loan_id_of = {ext: row.id for ext, row in known.loans.items()}
    for p in export.payments:
        if p.loan_external_id in export.rejected_loans:
            continue
        if p.loan_external_id not in loan_currency:
            issues.append(
                Issue(
                    "payments.csv",
                    p.line,
                    f"loan_external_id "
                    f"{p.loan_external_id!r} is in neither "
                    "loans.csv nor the database",
                )
            )
            continue
        if p.currency != loan_currency[p.loan_external_id]:
            issues.append(
                Issue(
                    "payments.csv",
                    p.line,
                    f"currency {p.currency} is not the "
                    f"loan's currency "
                    f"{loan_currency[p.loan_external_id]}",
                )
            )
        if p.received_at > now:
            issues.append(Issue("payments.csv", p.line, "received_at is in the future"))
        recorded = known.payments.get(p.external_reference)
        if recorded is not None and (
            recorded.loan_id != loan_id_of.get(p.loan_external_id) or recorded.amount != p.amount
        ):
            issues.append(
                Issue(
                    "payments.csv",
                    p.line,
                    f"external_reference "
                    f"{p.external_reference!r} is already "
                    "recorded for another loan or amount",
                )
            )
    return known
