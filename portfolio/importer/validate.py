"""Read an export folder and check every row before anything is written.

Each problem becomes an :class:`Issue` with its file, line and reason; validation goes on after
a bad row so that one run reports all of them. The format is documented in
``docs/import-format.md``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import available_timezones

import phonenumbers
from babel.numbers import list_currencies

from i18n import SUPPORTED_LOCALES

T = TypeVar("T")

FILES = (
    "branches.csv",
    "officers.csv",
    "borrowers.csv",
    "loans.csv",
    "schedules.csv",
    "payments.csv",
)
REQUIRED_FILES = ("borrowers.csv", "loans.csv", "schedules.csv")
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # file: (required columns, optional columns)
    "branches.csv": (
        ("code", "name", "country", "timezone", "currency"),
        ("mobile_money", "bank_name", "bank_account", "agents"),
    ),
    "officers.csv": (("branch_code", "name", "role"), ("channel", "chat_id", "locale")),
    "borrowers.csv": (
        ("external_id", "branch_code", "full_name", "phone", "date_of_birth", "national_id_last4"),
        ("preferred_language", "officer_name", "telegram_opt_in", "whatsapp_opt_in"),
    ),
    "loans.csv": (
        (
            "external_id",
            "borrower_external_id",
            "account_reference",
            "product",
            "principal",
            "currency",
            "annual_interest_rate",
            "frequency",
            "disbursed_on",
        ),
        ("status", "cycle"),
    ),
    "schedules.csv": (
        ("loan_external_id", "seq", "due_date", "principal_due", "interest_due"),
        ("fees_due",),
    ),
    "payments.csv": (
        ("external_reference", "loan_external_id", "amount", "currency", "received_at", "method"),
        (),
    ),
}
LOAN_STATUSES = ("active", "closed", "defaulted", "written_off")
PAYMENT_METHODS = ("mobile_money", "bank", "agent", "cash")
YES = {"yes", "y", "true", "1"}
NO = {"no", "n", "false", "0"}
_FACTOR = re.compile(r"^[0-9A-Za-z]{4}$")
_AMOUNT = re.compile(r"^-?\d{1,16}(\.\d{1,2})?$")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$")


@dataclass(frozen=True, order=True)
class Issue:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class ImportFailed(Exception):
    """The file set has errors; nothing was imported."""

    def __init__(self, issues: list[Issue]) -> None:
        super().__init__(f"{len(issues)} problem(s) in the import files; nothing was imported")
        self.issues = sorted(
            issues, key=lambda i: (FILES.index(i.file) if i.file in FILES else 99, i.line, i.reason)
        )


@dataclass(frozen=True, slots=True)
class BranchRow:
    line: int
    code: str
    name: str
    country: str
    timezone: str
    currency: str
    payment_instructions: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OfficerRow:
    line: int
    branch_code: str
    name: str
    role: str
    channel: str | None
    chat_id: str | None
    locale: str


@dataclass(frozen=True, slots=True)
class BorrowerRow:
    line: int
    external_id: str
    branch_code: str
    full_name: str
    phone: str
    language: str
    date_of_birth: date
    national_id_last4: str
    officer_name: str | None
    telegram_opt_in: bool | None
    whatsapp_opt_in: bool | None


@dataclass(frozen=True, slots=True)
class LoanRow:
    line: int
    external_id: str
    borrower_external_id: str
    account_reference: str
    product: str
    principal: Decimal
    currency: str
    annual_interest_rate: Decimal
    frequency: str
    disbursed_on: date
    status: str
    cycle: int


@dataclass(frozen=True, slots=True)
class InstallmentRow:
    line: int
    loan_external_id: str
    seq: int
    due_date: date
    principal_due: Decimal
    interest_due: Decimal
    fees_due: Decimal


@dataclass(frozen=True, slots=True)
class PaymentRow:
    line: int
    external_reference: str
    loan_external_id: str
    amount: Decimal
    currency: str
    received_at: datetime
    method: str


@dataclass
class ExportSet:
    """Every parsed row of a folder, and every problem found."""

    branches: list[BranchRow] = field(default_factory=list)
    officers: list[OfficerRow] = field(default_factory=list)
    borrowers: list[BorrowerRow] = field(default_factory=list)
    loans: list[LoanRow] = field(default_factory=list)
    installments: list[InstallmentRow] = field(default_factory=list)
    payments: list[PaymentRow] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    # Keys of rows left out for a bad field: references to them are not reported again.
    rejected_branches: set[str] = field(default_factory=set)
    rejected_borrowers: set[str] = field(default_factory=set)
    rejected_loans: set[str] = field(default_factory=set)

    @property
    def rows(self) -> int:
        return (
            len(self.branches)
            + len(self.officers)
            + len(self.borrowers)
            + len(self.loans)
            + len(self.installments)
            + len(self.payments)
        )


class FieldError(ValueError):
    """A value that does not parse; its message is the reason shown to the operator."""


# Field parsers: each answers the typed value or raises FieldError with a reason. Exports repeat
# the same dates, amounts and ids on many rows, so the pure ones remember recent answers.
def text(value: str) -> str:
    if not value:
        raise FieldError("is empty")
    return value


@lru_cache(maxsize=1 << 16)
def code(value: str) -> str:
    if not _CODE.match(value) or len(value) > 64:
        raise FieldError(f"{value!r} is not an identifier (letters, digits, - _ . : /; 64 at most)")
    return value


@lru_cache(maxsize=1 << 16)
def decimal(value: str) -> Decimal:
    if not _AMOUNT.match(value):
        raise FieldError(f"{value!r} is not an amount like 1500 or 1500.50")
    return Decimal(value).quantize(Decimal("0.01"))


@lru_cache(maxsize=1 << 16)
def positive(value: str) -> Decimal:
    amount = decimal(value)
    if amount <= 0:
        raise FieldError(f"{value!r} must be greater than 0")
    return amount


@lru_cache(maxsize=1 << 16)
def not_negative(value: str) -> Decimal:
    amount = decimal(value)
    if amount < 0:
        raise FieldError(f"{value!r} must not be negative")
    return amount


@lru_cache(maxsize=1 << 16)
def day(value: str) -> date:
    try:
        return date.fromisoformat(value) if len(value) == 10 else _bad_day(value)
    except ValueError:
        return _bad_day(value)


def _bad_day(value: str) -> date:
    raise FieldError(f"{value!r} is not a date YYYY-MM-DD")


def moment(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FieldError(f"{value!r} is not an ISO 8601 date and time") from None
    if parsed.tzinfo is None:
        raise FieldError(f"{value!r} has no UTC offset (e.g. 2026-11-03T10:15:00+03:00)")
    return parsed


@lru_cache(maxsize=1 << 16)
def integer(value: str) -> int:
    if not re.fullmatch(r"\d{1,9}", value):
        raise FieldError(f"{value!r} is not a whole number")
    return int(value)


@cache
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=1 << 16)
def currency(value: str) -> str:
    if value not in _currencies():
        raise FieldError(f"{value!r} is not an ISO 4217 currency code")
    return value


def country(value: str) -> str:
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise FieldError(f"{value!r} is not an ISO 3166 country code")
    return value


def timezone(value: str) -> str:
    if value not in _zones():
        raise FieldError(f"{value!r} is not an IANA time zone")
    return value


def phone(value: str) -> str:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise FieldError(f"{value!r} is not a phone number in E.164 form (+2547...)") from None
    if not phonenumbers.is_valid_number(number):
        raise FieldError(f"{value!r} is not a valid phone number")
    normalized = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if normalized != value:
        raise FieldError(f"{value!r} is not in E.164 form (expected {normalized})")
    return normalized


def one_of(*choices: str) -> Callable[[str], str]:
    @lru_cache(maxsize=64)
    def parse(value: str) -> str:
        if value not in choices:
            raise FieldError(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return parse


ROLE = one_of("officer", "manager")
CHANNEL = one_of("telegram", "whatsapp")
LANGUAGE = one_of(*SUPPORTED_LOCALES)
FREQUENCY = one_of("weekly", "monthly")
LOAN_STATUS = one_of(*LOAN_STATUSES)
METHOD = one_of(*PAYMENT_METHODS)


@lru_cache(maxsize=1 << 16)
def yes_no(value: str) -> bool:
    lowered = value.lower()
    if lowered in YES:
        return True
    if lowered in NO:
        return False
    raise FieldError(f"{value!r} is not yes or no")


@lru_cache(maxsize=1 << 16)
def factor(value: str) -> str:
    if not _FACTOR.match(value):
        raise FieldError("must be exactly 4 letters or digits")
    return value


def past_day(value: str) -> date:
    parsed = day(value)
    if parsed >= date.today():
        raise FieldError(f"{value!r} is not in the past")
    return parsed


def mobile_money(value: str) -> list[dict[str, str]]:
    """``M-Pesa|paybill|522533;Airtel Money|till|441122``."""
    out = []
    for item in filter(None, (part.strip() for part in value.split(";"))):
        parts = [p.strip() for p in item.split("|")]
        if len(parts) != 3 or not all(parts):
            raise FieldError(f"{item!r} is not provider|type|number")
        out.append({"provider": parts[0], "type": parts[1], "number": parts[2]})
    return out


def agents(value: str) -> list[dict[str, str]]:
    """``Kibuye Agency|Kibuye market gate;...``."""
    out = []
    for item in filter(None, (part.strip() for part in value.split(";"))):
        parts = [p.strip() for p in item.split("|")]
        if len(parts) != 2 or not all(parts):
            raise FieldError(f"{item!r} is not name|location")
        out.append({"name": parts[0], "location": parts[1]})
    return out


class _Row:
    """One CSV record being parsed; collects a reason per bad field."""

    __slots__ = ("columns", "file", "issues", "line", "ok", "values")

    def __init__(
        self,
        file: str,
        line: int,
        columns: dict[str, int],
        values: list[str],
        issues: list[Issue],
    ) -> None:
        self.file, self.line, self.columns, self.values = file, line, columns, values
        self.issues = issues
        self.ok = True

    def raw(self, column: str) -> str:
        index = self.columns.get(column)
        return self.values[index].strip() if index is not None else ""

    def get(self, column: str, parse: Callable[[str], T]) -> T:
        raw = self.raw(column)
        if not raw:
            self._fail(f"{column} is required")
            return None  # type: ignore[return-value]
        return self._parse(column, raw, parse)

    def optional(self, column: str, parse: Callable[[str], T], default: T) -> T:
        raw = self.raw(column)
        return self._parse(column, raw, parse) if raw else default

    def _parse(self, column: str, raw: str, parse: Callable[[str], T]) -> T:
        try:
            return parse(raw)
        except FieldError as exc:
            self._fail(f"{column} {exc}")
            return None  # type: ignore[return-value]

    def _fail(self, reason: str) -> None:
        self.ok = False
        self.issues.append(Issue(self.file, self.line, reason))


def _records(folder: Path, name: str, issues: list[Issue]) -> Iterator[_Row]:
    path = folder / name
    if not path.exists():
        if name in REQUIRED_FILES:
            issues.append(Issue(name, 0, "file is missing"))
        return
    required, _optional = COLUMNS[name]
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in required if c not in header]
        if missing:
            issues.append(Issue(name, 1, f"missing column(s): {', '.join(missing)}"))
            return
        columns = {column: index for index, column in enumerate(header)}
        width = len(header)
        line = reader.line_num
        for values in reader:
            start, line = line + 1, reader.line_num
            if not any(values) or not "".join(values).strip():
                continue
            row = _Row(name, start, columns, values, issues)
            if len(values) != width:
                row._fail(f"has {len(values)} fields, the header has {width}")
                continue
            yield row


def _read_branches(folder: Path, export: ExportSet) -> None:
    for row in _records(folder, "branches.csv", export.issues):
        mm = row.optional("mobile_money", mobile_money, list[dict[str, str]]())
        bank_name = row.optional("bank_name", text, "")
        bank_account = row.optional("bank_account", text, "")
        branch = BranchRow(
            row.line,
            row.get("code", code),
            row.get("name", text),
            row.get("country", country),
            row.get("timezone", timezone),
            row.get("currency", currency),
            {
                "mobile_money": mm,
                "bank": {"name": bank_name, "account": bank_account} if bank_name else None,
                "agents": row.optional("agents", agents, list[dict[str, str]]()),
            },
        )
        if row.ok:
            export.branches.append(branch)
        else:
            export.rejected_branches.add(row.raw("code"))


def _read_officers(folder: Path, export: ExportSet) -> None:
    for row in _records(folder, "officers.csv", export.issues):
        officer = OfficerRow(
            row.line,
            row.get("branch_code", code),
            row.get("name", text),
            row.get("role", ROLE),
            row.optional("channel", CHANNEL, None),
            row.optional("chat_id", text, None),
            row.optional("locale", LANGUAGE, "en"),
        )
        if officer.channel and not officer.chat_id:
            row._fail("chat_id is required when channel is set")
        if row.ok:
            export.officers.append(officer)


def _read_borrowers(folder: Path, export: ExportSet) -> None:
    for row in _records(folder, "borrowers.csv", export.issues):
        borrower = BorrowerRow(
            row.line,
            row.get("external_id", code),
            row.get("branch_code", code),
            row.get("full_name", text),
            row.get("phone", phone),
            row.optional("preferred_language", LANGUAGE, "en"),
            row.get("date_of_birth", past_day),
            row.get("national_id_last4", factor),
            row.optional("officer_name", text, None),
            row.optional("telegram_opt_in", yes_no, None),
            row.optional("whatsapp_opt_in", yes_no, None),
        )
        if row.ok:
            export.borrowers.append(borrower)
        else:
            export.rejected_borrowers.add(row.raw("external_id"))


def _read_loans(folder: Path, export: ExportSet) -> None:
    for row in _records(folder, "loans.csv", export.issues):
        loan = LoanRow(
            row.line,
            row.get("external_id", code),
            row.get("borrower_external_id", code),
            row.get("account_reference", code),
            row.get("product", text),
            row.get("principal", positive),
            row.get("currency", currency),
            row.get("annual_interest_rate", not_negative),
            row.get("frequency", FREQUENCY),
            row.get("disbursed_on", day),
            row.optional("status", LOAN_STATUS, "active"),
            row.optional("cycle", integer, 1),
        )
        if row.ok and len(loan.account_reference) > 32:
            row._fail("account_reference is longer than 32 characters")
        if row.ok:
            export.loans.append(loan)
        else:
            export.rejected_loans.add(row.raw("external_id"))


def _read_schedules(folder: Path, export: ExportSet) -> None:
    for row in _records(folder, "schedules.csv", export.issues):
        installment = InstallmentRow(
            row.line,
            row.get("loan_external_id", code),
            row.get("seq", integer),
            row.get("due_date", day),
            row.get("principal_due", not_negative),
            row.get("interest_due", not_negative),
            row.optional("fees_due", not_negative, Decimal("0.00")),
        )
        if row.ok and installment.seq < 1:
            row._fail("seq must be 1 or more")
        if row.ok and not (
            installment.principal_due + installment.interest_due + installment.fees_due
        ):
            row._fail("the installment owes nothing (principal, interest and fees are all 0)")
        if row.ok:
            export.installments.append(installment)


def _read_payments(folder: Path, export: ExportSet) -> None:
    for row in _records(folder, "payments.csv", export.issues):
        payment = PaymentRow(
            row.line,
            row.get("external_reference", code),
            row.get("loan_external_id", code),
            row.get("amount", positive),
            row.get("currency", currency),
            row.get("received_at", moment),
            row.get("method", METHOD),
        )
        if row.ok:
            export.payments.append(payment)


def read_export(folder: Path) -> ExportSet:
    """Parse every file of ``folder``; rows with a bad field are left out and reported."""
    export = ExportSet()
    if not folder.is_dir():
        export.issues.append(Issue(str(folder), 0, "is not a folder"))
        return export
    _read_branches(folder, export)
    _read_officers(folder, export)
    _read_borrowers(folder, export)
    _read_loans(folder, export)
    _read_schedules(folder, export)
    _read_payments(folder, export)
    return export
