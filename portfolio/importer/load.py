"""Check an export (:mod:`portfolio.importer.check`), then write it in one transaction.

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

import enum
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.borrowers.models import Borrower, Consent
from api.branches.models import Branch, Officer
from api.core.security import hash_secret_factor
from api.loans import rules
from api.loans.models import Installment, Loan, LoanStatus
from api.models import Base
from api.payments import service as payment_service
from portfolio.bulk import BulkWriter, Shape
from portfolio.bulk import Row as BulkRow
from portfolio.history import ALLOCATION, INSTALLMENT, allocation_row, installment_row
from portfolio.importer.check import CHUNK, Known, Stored, check
from portfolio.importer.validate import (
    BorrowerRow,
    ExportSet,
    ImportFailed,
    InstallmentRow,
    PaymentRow,
)

# Bulk rows take their columns from the models' tables. The database stamps ``created_at``, as
# it does for a row the ORM inserts.
_BORROWER = Shape(Base.metadata.tables["borrower"], database_fills=("created_at",))
_CONSENT = Shape(Base.metadata.tables["borrower_consent"])
_LOAN = Shape(Base.metadata.tables["loan"], database_fills=("created_at",))
_PAYMENT = Shape(Base.metadata.tables["payment"], database_fills=("created_at",))


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


def _loan_zones(export: ExportSet, known: Known) -> dict[str, str]:
    """The branch time zone of every loan in the files (a paid day is a local day)."""
    zone_of_code = {code: branch.timezone for code, branch in known.branches.items()}
    zone_of_code.update({b.code: b.timezone for b in export.branches})
    code_of_id = {branch.id: code for code, branch in known.branches.items()}
    borrower_code = {ext: code_of_id.get(row.branch_id, "") for ext, row in known.borrowers.items()}
    borrower_code.update({b.external_id: b.branch_code for b in export.borrowers})
    return {
        loan.external_id: zone_of_code[borrower_code[loan.borrower_external_id]]
        for loan in export.loans
    }


def _branches(
    session: Session, export: ExportSet, known: Known, report: ImportReport
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
    known: Known,
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
    known: Known,
    branch_ids: dict[str, int],
    officer_ids: dict[tuple[str, str], int],
    pepper: str,
    report: ImportReport,
    reporter: Reporter,
) -> dict[str, int]:
    reporter.start("borrowers", len(export.borrowers))
    ids = {ext: row.id for ext, row in known.borrowers.items()}
    next_id = writer.next_id("borrower")
    inserts: list[BulkRow] = []
    updates: list[dict[str, Any]] = []
    consents: list[tuple[BorrowerRow, int]] = []
    for row in export.borrowers:
        officer_id = (
            officer_ids.get((row.branch_code, row.officer_name)) if row.officer_name else None
        )
        fields = {
            "branch_id": branch_ids[row.branch_code],
            "officer_id": officer_id,
            "full_name": row.full_name,
            "phone_e164": row.phone,
            "dob_hash": hash_secret_factor(pepper, row.date_of_birth.isoformat()),
            "national_id_last4_hash": hash_secret_factor(pepper, row.national_id_last4),
        }
        existing = known.borrowers.get(row.external_id)
        if existing is None:
            ids[row.external_id] = next_id
            inserts.append(
                _BORROWER.row(
                    id=next_id,
                    external_id=row.external_id,
                    preferred_language=row.language,
                    **fields,
                )
            )
            next_id += 1
        elif _differs(existing, fields):
            updates.append({"id": existing.id, **fields})
        if row.telegram_opt_in is not None or row.whatsapp_opt_in is not None:
            consents.append((row, ids[row.external_id]))
    for start in range(0, len(inserts), CHUNK):
        writer.write(_BORROWER, inserts[start : start + CHUNK])
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
    rows: list[BulkRow] = []
    for row, borrower_id in consents:
        for channel, opted_in in (
            ("telegram", row.telegram_opt_in),
            ("whatsapp", row.whatsapp_opt_in),
        ):
            if opted_in is None or (borrower_id, channel) in existing:
                continue
            rows.append(
                _CONSENT.row(
                    id=next_id,
                    borrower_id=borrower_id,
                    channel=channel,
                    opted_in=opted_in,
                    opted_in_at=now if opted_in else None,
                    opted_out_at=None if opted_in else now,
                    source="import",
                )
            )
            next_id += 1
    writer.write(_CONSENT, rows)
    report.add("consents", created=len(rows))


def _loans(
    session: Session,
    writer: BulkWriter,
    export: ExportSet,
    known: Known,
    borrower_ids: dict[str, int],
    report: ImportReport,
    reporter: Reporter,
) -> dict[str, int]:
    reporter.start("loans", len(export.loans))
    ids = {ext: row.id for ext, row in known.loans.items()}
    next_id = writer.next_id("loan")
    inserts: list[BulkRow] = []
    updates: list[dict[str, Any]] = []
    for row in export.loans:
        fields = {
            "borrower_id": borrower_ids[row.borrower_external_id],
            "account_reference": row.account_reference,
            "product": row.product,
            "principal": row.principal,
            "currency": row.currency,
            "annual_interest_rate": row.annual_interest_rate,
            "frequency": row.frequency,
            "disbursed_on": row.disbursed_on,
        }
        existing = known.loans.get(row.external_id)
        if existing is None:
            ids[row.external_id] = next_id
            inserts.append(
                _LOAN.row(
                    id=next_id,
                    external_id=row.external_id,
                    borrower_id=fields["borrower_id"],
                    account_reference=row.account_reference,
                    product=row.product,
                    principal=str(row.principal),
                    currency=row.currency,
                    annual_interest_rate=str(row.annual_interest_rate),
                    frequency=row.frequency,
                    disbursed_on=row.disbursed_on.isoformat(),
                    status=row.status,
                    cycle=row.cycle,
                )
            )
            next_id += 1
            continue
        # A repayment state follows the payments; only the MFI's own decisions come from files.
        was = str(existing.status)
        status = row.status if row.status in {"defaulted", "written_off"} else was
        if _differs(existing, fields) or status != was or row.cycle != existing.cycle:
            updates.append({"id": existing.id, **fields, "status": status, "cycle": row.cycle})
    for start in range(0, len(inserts), CHUNK):
        writer.write(_LOAN, inserts[start : start + CHUNK])
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


def _differs(existing: Stored, fields: dict[str, Any]) -> bool:
    """Whether a row read from the database differs from the file's values of the same columns."""
    current = existing._mapping
    return any(_plain(current[name]) != value for name, value in fields.items())


def _plain(value: Any) -> Any:
    # Enum columns read back as enums; the files hold their string values.
    return value.value if isinstance(value, enum.Enum) else value


def _installments(
    session: Session,
    writer: BulkWriter,
    export: ExportSet,
    known: Known,
    loan_ids: dict[str, int],
    zones: dict[str, str],
    report: ImportReport,
    reporter: Reporter,
) -> set[str]:
    """Write schedules; answer the payment references already written with a new loan."""
    reporter.start("installments", len(export.installments))
    next_id = writer.next_id("loan_installment")
    new_loans = {loan.external_id for loan in export.loans if loan.external_id not in known.loans}
    inserts: list[BulkRow] = []
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
        elif _differs(
            existing,
            {
                "due_date": row.due_date,
                "principal_due": row.principal_due,
                "interest_due": row.interest_due,
                "fees_due": row.fees_due,
            },
        ):
            changed.append((existing.id, row))
    written, write_payments = _fresh_loans(writer, export, fresh, loan_ids, zones)
    for schedule in fresh.values():
        inserts.extend(_installment_insert(due) for due in schedule)
    for start in range(0, len(inserts), CHUNK):
        writer.write(INSTALLMENT, inserts[start : start + CHUNK])
        reporter.advance(len(inserts[start : start + CHUNK]))
    write_payments()
    for installment_id, row in changed:
        installment = session.get_one(Installment, installment_id)
        installment.due_date = row.due_date
        installment.principal_due = row.principal_due
        installment.interest_due = row.interest_due
        installment.fees_due = row.fees_due
        # The paid day stays as it was: a changed schedule is not a payment.
        installment.status = rules.installment_status(installment)
    reporter.advance(len(export.installments) - len(inserts))
    report.add(
        "installments",
        created=len(inserts),
        updated=len(changed),
        unchanged=len(export.installments) - len(inserts) - len(changed),
    )
    return written


@dataclass(slots=True)
class _Due:
    """An installment of a loan this import creates, with what its payments have paid."""

    id: int
    loan_id: int
    row: InstallmentRow
    owed: rules.Owed = field(init=False)

    def __post_init__(self) -> None:
        row = self.row
        self.owed = rules.Owed(
            principal_due=row.principal_due, interest_due=row.interest_due, fees_due=row.fees_due
        )


def _installment_insert(due: _Due) -> BulkRow:
    row = due.row
    return installment_row(
        due.id, loan_id=due.loan_id, seq=row.seq, due_date=row.due_date, owed=due.owed
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
    spreading them over its schedule. That is done here with ``record_payment``'s rule,
    :func:`api.loans.rules.allocate` (the paid day in the branch's time zone; money beyond the
    schedule stays unallocated; a repaid loan is closed), because going through the ORM one
    payment at a time takes hours for a 100000-borrower export. ``tests/data/test_csv_import.py``
    and ``tests/data/test_money_paths.py`` check both ways give the same rows.
    """
    payments: dict[str, list[PaymentRow]] = defaultdict(list)
    for payment in export.payments:
        if payment.loan_external_id in fresh:
            payments[payment.loan_external_id].append(payment)
    payment_id = writer.next_id("payment")
    allocation_id = writer.next_id("payment_allocation")
    payment_rows: list[BulkRow] = []
    allocation_rows: list[BulkRow] = []
    closed: list[int] = []
    written: set[str] = set()
    for loan_external_id, schedule in fresh.items():
        zone = ZoneInfo(zones[loan_external_id])
        owed = [due.owed for due in schedule]
        start = 0
        for payment in sorted(payments.get(loan_external_id, ()), key=lambda p: p.received_at):
            payment_rows.append(
                _PAYMENT.row(
                    id=payment_id,
                    loan_id=loan_ids[loan_external_id],
                    amount=str(payment.amount),
                    currency=payment.currency,
                    method=payment.method,
                    external_reference=payment.external_reference,
                    received_at=writer.ts(payment.received_at),
                    source="import",
                )
            )
            paid_on = payment.received_at.astimezone(zone).date()
            allocation = rules.allocate(payment.amount, owed, paid_on=paid_on, start=start)
            for split in allocation.splits:
                owed[split.installment] = split.after
                allocation_rows.append(
                    allocation_row(
                        allocation_id,
                        payment_id=payment_id,
                        installment_id=schedule[split.installment].id,
                        split=split,
                    )
                )
                allocation_id += 1
            start = allocation.resume_at
            written.add(payment.external_reference)
            payment_id += 1
        for due, state in zip(schedule, owed, strict=True):
            due.owed = state
        if rules.repaid(owed):
            closed.append(schedule[0].loan_id)

    def write() -> None:
        for start in range(0, len(payment_rows), CHUNK):
            writer.write(_PAYMENT, payment_rows[start : start + CHUNK])
        for start in range(0, len(allocation_rows), CHUNK):
            writer.write(ALLOCATION, allocation_rows[start : start + CHUNK])
        for start in range(0, len(closed), CHUNK):
            writer.conn.execute(
                update(Loan)
                .where(Loan.id.in_(closed[start : start + CHUNK]))
                .values(status=LoanStatus.closed)
            )

    return written, write


def _payments(
    session: Session,
    export: ExportSet,
    known: Known,
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
