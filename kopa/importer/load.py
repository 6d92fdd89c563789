"""Check an export against the database, then write it in one transaction.

Rows are matched by their external keys (branch code, officer branch and name, borrower and loan
external ids, installment loan and number, payment reference), so importing the same files again
changes nothing. Payments of loans that already exist go through
:func:`api.payments.service.record_payment`, which allocates them and evaluates promises exactly as
for a live confirmation; payments of loans the import creates are spread in bulk with the same
rule (see :func:`_fresh_loans`).

Two facts belong to the borrower once they exist and are never overwritten by an import: their
consent on a channel (an opt-out said in chat must win over an old export) and the language they
chose in chat.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import String, any_, bindparam, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower, Consent
from api.branches.models import Branch, Officer
from api.core.security import hash_secret_factor
from api.loans.models import Installment, InstallmentStatus, Loan, LoanStatus
from api.payments import service as payment_service
from api.payments.models import Payment
from kopa.importer.validate import (
    BorrowerRow,
    ExportSet,
    ImportFailed,
    InstallmentRow,
    Issue,
    LoanRow,
    PaymentRow,
)
from kopa.portfolio.bulk import BulkWriter
from kopa.portfolio.synthetic import COLUMNS as SEED_COLUMNS

K = TypeVar("K")
Rowish = TypeVar("Rowish")
ZERO = Decimal("0.00")
CHUNK = 5000


class Reporter(Protocol):
    def start(self, phase: str, total: int) -> None: ...

    def advance(self, count: int) -> None: ...


class _Silent:
    def start(self, phase: str, total: int) -> None:
        return None

    def advance(self, count: int) -> None:
        return None


@dataclass
class ImportReport:
    """What the import did, per kind of row."""

    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, created: int = 0, updated: int = 0, unchanged: int = 0) -> None:
        self.created[kind] = self.created.get(kind, 0) + created
        self.updated[kind] = self.updated.get(kind, 0) + updated
        self.unchanged[kind] = self.unchanged.get(kind, 0) + unchanged

    @property
    def changes(self) -> int:
        return sum(self.created.values()) + sum(self.updated.values())


@dataclass
class _Known:
    """What the database already holds, keyed like the files."""

    branches: dict[str, Branch]
    officers: dict[tuple[str, str], Officer]
    borrowers: dict[str, tuple[Any, ...]]  # external id -> row
    phones: dict[str, str]  # phone -> borrower external id
    loans: dict[str, tuple[Any, ...]]
    accounts: dict[str, str]  # account reference -> loan external id
    installments: dict[tuple[int, int], tuple[Any, ...]]  # (loan id, seq) -> row
    payments: dict[str, tuple[int, Decimal]]  # reference -> (loan id, amount)


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


def _load_known(session: Session, export: ExportSet) -> _Known:
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
    borrowers = {r[0]: tuple(r) for r in session.execute(select(*borrower_cols))}
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
    loans = {r[0]: tuple(r) for r in session.execute(select(*loan_cols))}
    loan_ids = {row[1] for ext, row in loans.items()}
    wanted = {p.external_reference for p in export.payments}
    payments: dict[str, tuple[int, Decimal]] = {}
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
        payments.update({ref: (loan_id, amount) for ref, loan_id, amount in session.execute(query)})
    installments: dict[tuple[int, int], tuple[Any, ...]] = {}
    if loan_ids and export.installments:
        inst_cols = (
            Installment.loan_id,
            Installment.seq,
            Installment.id,
            Installment.due_date,
            Installment.principal_due,
            Installment.interest_due,
            Installment.fees_due,
        )
        installments = {(r[0], r[1]): tuple(r) for r in session.execute(select(*inst_cols))}
    return _Known(
        branches=branches,
        officers=officers,
        borrowers=borrowers,
        phones={str(row[5]): ext for ext, row in borrowers.items()},
        loans=loans,
        accounts={str(row[3]): ext for ext, row in loans.items()},
        installments=installments,
        payments=payments,
    )


def check(session: Session, export: ExportSet) -> _Known:
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
        loan_currency[ext], loan_disbursed[ext] = row[6], row[9]
    for loan in export.loans:
        if loan.borrower_external_id in borrowers:
            code = borrower_branch.get(loan.borrower_external_id)
        elif loan.borrower_external_id in known.borrowers:
            code = code_of_branch.get(known.borrowers[loan.borrower_external_id][2])
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
    loan_id_of = {ext: row[1] for ext, row in known.loans.items()}
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
            recorded[0] != loan_id_of.get(p.loan_external_id) or recorded[1] != p.amount
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


def import_export(
    session: Session, export: ExportSet, *, pepper: str, reporter: Reporter | None = None
) -> ImportReport:
    """Validate against the database and write everything, or raise :class:`ImportFailed`.

    The caller owns the transaction: it commits on success and rolls back on any exception.
    """
    reporter = reporter or _Silent()
    known = check(session, export)
    if export.issues:
        raise ImportFailed(export.issues)
    report = ImportReport()
    writer = BulkWriter(session.connection())
    branch_ids = _branches(session, export, known, report)
    officer_ids = _officers(session, export, known, branch_ids, report)
    borrower_ids = _borrowers(
        session, writer, export, known, branch_ids, officer_ids, pepper, report, reporter
    )
    loan_ids = _loans(session, writer, export, known, borrower_ids, report, reporter)
    zones = _loan_zones(export, known)
    written = _installments(session, writer, export, known, loan_ids, zones, report, reporter)
    _payments(session, export, known, loan_ids, written, report, reporter)
    writer.finish()
    session.flush()
    return report


def _loan_zones(export: ExportSet, known: _Known) -> dict[str, str]:
    """The branch time zone of every loan in the files (a paid day is a local day)."""
    zone_of_code = {code: branch.timezone for code, branch in known.branches.items()}
    zone_of_code.update({b.code: b.timezone for b in export.branches})
    code_of_id = {branch.id: code for code, branch in known.branches.items()}
    borrower_code = {ext: code_of_id.get(row[2], "") for ext, row in known.borrowers.items()}
    borrower_code.update({b.external_id: b.branch_code for b in export.borrowers})
    return {
        loan.external_id: zone_of_code[borrower_code[loan.borrower_external_id]]
        for loan in export.loans
    }


def _branches(
    session: Session, export: ExportSet, known: _Known, report: ImportReport
) -> dict[str, int]:
    for row in export.branches:
        branch = known.branches.get(row.code)
        values = {
            "name": row.name,
            "country": row.country,
            "timezone": row.timezone,
            "currency": row.currency,
            "payment_instructions": row.payment_instructions,
        }
        if branch is None:
            branch = Branch(code=row.code, extra_holidays=[], **values)
            session.add(branch)
            known.branches[row.code] = branch
            report.add("branches", created=1)
        elif any(getattr(branch, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(branch, k, v)
            report.add("branches", updated=1)
        else:
            report.add("branches", unchanged=1)
    session.flush()
    return {code: branch.id for code, branch in known.branches.items()}


def _officers(
    session: Session,
    export: ExportSet,
    known: _Known,
    branch_ids: dict[str, int],
    report: ImportReport,
) -> dict[tuple[str, str], int]:
    for row in export.officers:
        officer = known.officers.get((row.branch_code, row.name))
        values = {
            "role": row.role,
            "channel": row.channel,
            "chat_id": row.chat_id,
            "locale": row.locale,
        }
        if officer is None:
            officer = Officer(branch_id=branch_ids[row.branch_code], name=row.name, **values)
            session.add(officer)
            known.officers[(row.branch_code, row.name)] = officer
            report.add("officers", created=1)
        elif any(getattr(officer, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(officer, k, v)
            report.add("officers", updated=1)
        else:
            report.add("officers", unchanged=1)
    session.flush()
    return {key: officer.id for key, officer in known.officers.items()}


def _borrowers(
    session: Session,
    writer: BulkWriter,
    export: ExportSet,
    known: _Known,
    branch_ids: dict[str, int],
    officer_ids: dict[tuple[str, str], int],
    pepper: str,
    report: ImportReport,
    reporter: Reporter,
) -> dict[str, int]:
    reporter.start("borrowers", len(export.borrowers))
    ids = {ext: row[1] for ext, row in known.borrowers.items()}
    next_id = writer.next_id("borrower")
    inserts: list[tuple[Any, ...]] = []
    updates: list[dict[str, Any]] = []
    consents: list[tuple[BorrowerRow, int]] = []
    for row in export.borrowers:
        officer_id = (
            officer_ids.get((row.branch_code, row.officer_name)) if row.officer_name else None
        )
        values = (
            branch_ids[row.branch_code],
            officer_id,
            row.full_name,
            row.phone,
            hash_secret_factor(pepper, row.date_of_birth.isoformat()),
            hash_secret_factor(pepper, row.national_id_last4),
        )
        existing = known.borrowers.get(row.external_id)
        if existing is None:
            ids[row.external_id] = next_id
            inserts.append((next_id, row.external_id, *values, row.language))
            next_id += 1
        elif tuple(existing[2:]) != values:
            updates.append(
                {
                    "id": existing[1],
                    "branch_id": values[0],
                    "officer_id": values[1],
                    "full_name": values[2],
                    "phone_e164": values[3],
                    "dob_hash": values[4],
                    "national_id_last4_hash": values[5],
                }
            )
        if row.telegram_opt_in is not None or row.whatsapp_opt_in is not None:
            consents.append((row, ids[row.external_id]))
    columns = (
        "id",
        "external_id",
        "branch_id",
        "officer_id",
        "full_name",
        "phone_e164",
        "dob_hash",
        "national_id_last4_hash",
        "preferred_language",
    )
    for start in range(0, len(inserts), CHUNK):
        writer.write("borrower", columns, inserts[start : start + CHUNK])
        reporter.advance(len(inserts[start : start + CHUNK]))
    if updates:
        session.execute(
            update(Borrower),
            updates,
        )
    reporter.advance(len(export.borrowers) - len(inserts))
    report.add(
        "borrowers",
        created=len(inserts),
        updated=len(updates),
        unchanged=len(export.borrowers) - len(inserts) - len(updates),
    )
    _consents(session, writer, consents, report)
    return ids


def _consents(
    session: Session,
    writer: BulkWriter,
    consents: list[tuple[BorrowerRow, int]],
    report: ImportReport,
) -> None:
    """Create missing consent rows; an existing decision is the borrower's and stays."""
    existing = set(session.execute(select(Consent.borrower_id, Consent.channel)).tuples())
    now = writer.ts(datetime.now(UTC))
    next_id = writer.next_id("borrower_consent")
    rows: list[tuple[Any, ...]] = []
    for row, borrower_id in consents:
        for channel, opted_in in (
            ("telegram", row.telegram_opt_in),
            ("whatsapp", row.whatsapp_opt_in),
        ):
            if opted_in is None or (borrower_id, channel) in existing:
                continue
            rows.append(
                (
                    next_id,
                    borrower_id,
                    channel,
                    opted_in,
                    now if opted_in else None,
                    None if opted_in else now,
                    "import",
                )
            )
            next_id += 1
    writer.write(
        "borrower_consent",
        ("id", "borrower_id", "channel", "opted_in", "opted_in_at", "opted_out_at", "source"),
        rows,
    )
    report.add("consents", created=len(rows))


def _loans(
    session: Session,
    writer: BulkWriter,
    export: ExportSet,
    known: _Known,
    borrower_ids: dict[str, int],
    report: ImportReport,
    reporter: Reporter,
) -> dict[str, int]:
    reporter.start("loans", len(export.loans))
    ids = {ext: row[1] for ext, row in known.loans.items()}
    next_id = writer.next_id("loan")
    inserts: list[tuple[Any, ...]] = []
    updates: list[dict[str, Any]] = []
    for row in export.loans:
        values = (
            borrower_ids[row.borrower_external_id],
            row.account_reference,
            row.product,
            row.principal,
            row.currency,
            row.annual_interest_rate,
            row.frequency,
            row.disbursed_on,
        )
        existing = known.loans.get(row.external_id)
        if existing is None:
            ids[row.external_id] = next_id
            inserts.append(_loan_insert(next_id, row, values))
            next_id += 1
            continue
        current = (
            existing[2],
            existing[3],
            existing[4],
            existing[5],
            existing[6],
            existing[7],
            str(existing[8]),
            existing[9],
        )
        # A repayment state follows the payments; only the MFI's own decisions come from files.
        status = row.status if row.status in {"defaulted", "written_off"} else str(existing[10])
        if current != values or status != str(existing[10]) or row.cycle != existing[11]:
            updates.append(
                {
                    "id": existing[1],
                    "borrower_id": values[0],
                    "account_reference": values[1],
                    "product": values[2],
                    "principal": values[3],
                    "currency": values[4],
                    "annual_interest_rate": values[5],
                    "frequency": values[6],
                    "disbursed_on": values[7],
                    "status": status,
                    "cycle": row.cycle,
                }
            )
    columns = (
        "id",
        "external_id",
        "borrower_id",
        "account_reference",
        "product",
        "principal",
        "currency",
        "annual_interest_rate",
        "frequency",
        "disbursed_on",
        "status",
        "cycle",
        "collection_paused",
        "group_id",
    )
    for start in range(0, len(inserts), CHUNK):
        writer.write("loan", columns, inserts[start : start + CHUNK])
        reporter.advance(len(inserts[start : start + CHUNK]))
    if updates:
        session.execute(
            update(Loan),
            updates,
        )
    reporter.advance(len(export.loans) - len(inserts))
    report.add(
        "loans",
        created=len(inserts),
        updated=len(updates),
        unchanged=len(export.loans) - len(inserts) - len(updates),
    )
    return ids


def _loan_insert(loan_id: int, row: LoanRow, values: tuple[Any, ...]) -> tuple[Any, ...]:
    borrower_id, account, product, principal, currency, rate, frequency, disbursed = values
    return (
        loan_id,
        row.external_id,
        borrower_id,
        account,
        product,
        str(principal),
        currency,
        str(rate),
        frequency,
        disbursed.isoformat(),
        row.status,
        row.cycle,
        False,
        None,
    )


def _installments(
    session: Session,
    writer: BulkWriter,
    export: ExportSet,
    known: _Known,
    loan_ids: dict[str, int],
    zones: dict[str, str],
    report: ImportReport,
    reporter: Reporter,
) -> set[str]:
    """Write schedules; answer the payment references already written with a new loan."""
    reporter.start("installments", len(export.installments))
    next_id = writer.next_id("loan_installment")
    new_loans = {loan.external_id for loan in export.loans if loan.external_id not in known.loans}
    inserts: list[tuple[Any, ...]] = []
    fresh: dict[str, list[_Due]] = defaultdict(list)
    changed: list[tuple[int, InstallmentRow]] = []
    for row in sorted(export.installments, key=lambda i: (i.loan_external_id, i.seq)):
        loan_id = loan_ids[row.loan_external_id]
        existing = known.installments.get((loan_id, row.seq))
        if existing is None and row.loan_external_id in new_loans:
            fresh[row.loan_external_id].append(_Due(next_id, loan_id, row))
            next_id += 1
        elif existing is None:
            inserts.append(_installment_insert(_Due(next_id, loan_id, row)))
            next_id += 1
        elif (existing[3], existing[4], existing[5], existing[6]) != (
            row.due_date,
            row.principal_due,
            row.interest_due,
            row.fees_due,
        ):
            changed.append((existing[2], row))
    written, write_payments = _fresh_loans(writer, export, fresh, loan_ids, zones)
    for schedule in fresh.values():
        inserts.extend(_installment_insert(due) for due in schedule)
    for start in range(0, len(inserts), CHUNK):
        writer.write("loan_installment", INSTALLMENT_COLUMNS, inserts[start : start + CHUNK])
        reporter.advance(len(inserts[start : start + CHUNK]))
    write_payments()
    for installment_id, row in changed:
        installment = session.get_one(Installment, installment_id)
        installment.due_date = row.due_date
        installment.principal_due = row.principal_due
        installment.interest_due = row.interest_due
        installment.fees_due = row.fees_due
        if installment.total_paid >= installment.total_due:
            installment.status = InstallmentStatus.paid
        elif installment.total_paid > ZERO:
            installment.status = InstallmentStatus.partial
        else:
            installment.status = InstallmentStatus.pending
    reporter.advance(len(export.installments) - len(inserts))
    report.add(
        "installments",
        created=len(inserts),
        updated=len(changed),
        unchanged=len(export.installments) - len(inserts) - len(changed),
    )
    return written


# The same column order the seed writes installments in (one list for both bulk loaders).
INSTALLMENT_COLUMNS = SEED_COLUMNS["loan_installment"]


@dataclass(slots=True)
class _Due:
    """An installment of a loan this import creates, with what its payments cover."""

    id: int
    loan_id: int
    row: InstallmentRow
    fees_paid: Decimal = ZERO
    interest_paid: Decimal = ZERO
    principal_paid: Decimal = ZERO
    paid_on: date | None = None
    outstanding: Decimal = ZERO

    def __post_init__(self) -> None:
        row = self.row
        self.outstanding = row.fees_due + row.interest_due + row.principal_due

    @property
    def status(self) -> str:
        if self.outstanding <= ZERO:
            return InstallmentStatus.paid.value
        if self.fees_paid + self.interest_paid + self.principal_paid > ZERO:
            return InstallmentStatus.partial.value
        return InstallmentStatus.pending.value


def _installment_insert(due: _Due) -> tuple[Any, ...]:
    row = due.row
    return (
        due.id,
        due.loan_id,
        row.seq,
        row.due_date.isoformat(),
        str(row.principal_due),
        str(row.interest_due),
        str(row.fees_due),
        str(due.principal_paid),
        str(due.interest_paid),
        str(due.fees_paid),
        due.status,
        due.paid_on.isoformat() if due.paid_on else None,
    )


def _fresh_loans(
    writer: BulkWriter,
    export: ExportSet,
    fresh: dict[str, list[_Due]],
    loan_ids: dict[str, int],
    zones: dict[str, str],
) -> tuple[set[str], Callable[[], None]]:
    """Payments of loans this import creates, in bulk: their references and their writer.

    Such a loan has no earlier payment, promise or case, so recording its payments reduces to
    spreading them over its schedule. That is done here with the rule of
    ``api.payments.service`` (oldest installment first; fees, interest, principal; the paid day
    in the branch's time zone; money beyond the schedule stays unallocated; a repaid loan is
    closed), because going through the ORM one payment at a time takes hours for a
    100000-borrower export. ``tests/data/test_csv_import.py`` checks both ways give the same rows.
    """
    payments: dict[str, list[PaymentRow]] = defaultdict(list)
    for payment in export.payments:
        if payment.loan_external_id in fresh:
            payments[payment.loan_external_id].append(payment)
    payment_id = writer.next_id("payment")
    allocation_id = writer.next_id("payment_allocation")
    payment_rows: list[tuple[Any, ...]] = []
    allocation_rows: list[tuple[Any, ...]] = []
    closed: list[int] = []
    written: set[str] = set()
    for loan_external_id, schedule in fresh.items():
        zone = ZoneInfo(zones[loan_external_id])
        cursor = 0
        for payment in sorted(payments.get(loan_external_id, ()), key=lambda p: p.received_at):
            paid_on = payment.received_at.astimezone(zone).date()
            payment_rows.append(
                (
                    payment_id,
                    loan_ids[loan_external_id],
                    str(payment.amount),
                    payment.currency,
                    payment.method,
                    payment.external_reference,
                    writer.ts(payment.received_at),
                    "import",
                )
            )
            left = payment.amount
            # Installments before the cursor are paid (validation refuses ones owing nothing).
            while left > ZERO and cursor < len(schedule):
                due = schedule[cursor]
                row = due.row
                fees = min(left, row.fees_due - due.fees_paid)
                left -= fees
                interest = min(left, row.interest_due - due.interest_paid)
                left -= interest
                principal = min(left, row.principal_due - due.principal_paid)
                left -= principal
                due.fees_paid += fees
                due.interest_paid += interest
                due.principal_paid += principal
                due.outstanding -= fees + interest + principal
                if due.outstanding <= ZERO:
                    due.paid_on = paid_on
                    cursor += 1
                allocation_rows.append(
                    (allocation_id, payment_id, due.id, str(fees), str(interest), str(principal))
                )
                allocation_id += 1
            written.add(payment.external_reference)
            payment_id += 1
        if schedule and cursor == len(schedule):
            closed.append(schedule[0].loan_id)

    def write() -> None:
        for start in range(0, len(payment_rows), CHUNK):
            writer.write("payment", PAYMENT_COLUMNS, payment_rows[start : start + CHUNK])
        for start in range(0, len(allocation_rows), CHUNK):
            writer.write(
                "payment_allocation", ALLOCATION_COLUMNS, allocation_rows[start : start + CHUNK]
            )
        for start in range(0, len(closed), CHUNK):
            writer.conn.execute(
                update(Loan)
                .where(Loan.id.in_(closed[start : start + CHUNK]))
                .values(status=LoanStatus.closed)
            )

    return written, write


PAYMENT_COLUMNS = (
    "id",
    "loan_id",
    "amount",
    "currency",
    "method",
    "external_reference",
    "received_at",
    "source",
)
ALLOCATION_COLUMNS = ("id", "payment_id", "installment_id", "fees", "interest", "principal")


def _payments(
    session: Session,
    export: ExportSet,
    known: _Known,
    loan_ids: dict[str, int],
    written: set[str],
    report: ImportReport,
    reporter: Reporter,
) -> None:
    session.flush()
    new = [
        p
        for p in export.payments
        if p.external_reference not in known.payments and p.external_reference not in written
    ]
    reporter.start("payments", len(export.payments))
    reporter.advance(len(export.payments) - len(new))
    fresh = len(written)
    # Oldest first per loan, so each payment meets the schedule as it stood on its day.
    new.sort(key=lambda p: (loan_ids[p.loan_external_id], p.received_at))
    loans: dict[int, Loan] = {}
    for done, row in enumerate(new, start=1):
        loan_id = loan_ids[row.loan_external_id]
        loan = loans.get(loan_id)
        if loan is None:
            # Keep the identity map small on large imports; everything so far is flushed.
            session.flush()
            loans.clear()
            session.expunge_all()
            loan = loans[loan_id] = session.get_one(Loan, loan_id)
        payment_service.record_payment(
            session=session,
            loan=loan,
            amount=row.amount,
            currency=row.currency,
            external_reference=row.external_reference,
            received_at=row.received_at,
            method=row.method,
            source="import",
        )
        if done % 500 == 0:
            reporter.advance(500)
    reporter.advance(len(new) % 500)
    report.add(
        "payments", created=len(new) + fresh, unchanged=len(export.payments) - len(new) - fresh
    )
