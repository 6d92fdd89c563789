"""``kopa import``: the documented CSV format, all-or-nothing, idempotent."""

from __future__ import annotations

import csv
import shutil
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api.core.db import build_engine
from api.core.security import hash_secret_factor
from api.models import Borrower, Consent, Installment, Loan, Payment, PaymentAllocation
from kopa.cli import app
from kopa.paths import ROOT
from portfolio.importer import ImportFailed, run_import
from portfolio.importer.export import write_synthetic_export
from portfolio.synthetic.seed import seed_portfolio
from tests.data.helpers_data import PEPPER, dump

EXAMPLE = ROOT / "examples" / "import"


def _rows(name: str) -> list[dict[str, str]]:
    with (EXAMPLE / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _copy_example(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    shutil.copytree(EXAMPLE, folder)
    return folder


def _edit(folder: Path, name: str, change: Callable[[list[list[str]]], None]) -> None:
    """Change the rows of ``name`` (header included) in place."""
    path = folder / name
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    change(rows)
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def test_example_export_imports_and_a_second_import_changes_nothing(fresh_db_url: str) -> None:
    report = run_import(EXAMPLE, database_url=fresh_db_url, pepper=PEPPER)

    assert report.created["borrowers"] == len(_rows("borrowers.csv"))
    assert report.created["loans"] == len(_rows("loans.csv"))
    assert report.created["installments"] == len(_rows("schedules.csv"))
    assert report.created["payments"] == len(_rows("payments.csv"))
    engine = build_engine(fresh_db_url)
    with Session(engine) as s:
        esther = s.scalars(select(Borrower).where(Borrower.external_id == "FX-C-1001")).one()
        assert esther.phone_e164 == "+254733100201"
        assert esther.preferred_language == "sw"
        # Knowledge factors are stored only as peppered hashes, as verification expects them.
        assert esther.dob_hash == hash_secret_factor(PEPPER, "1988-04-12")
        assert esther.national_id_last4_hash == hash_secret_factor(PEPPER, "7731")
        # Payments were allocated: what the files paid is what the schedules show as paid.
        paid_in_files = sum(Decimal(r["amount"]) for r in _rows("payments.csv"))
        assert s.scalar(select(func.sum(Payment.amount))) == paid_in_files
        allocated: dict[int, Decimal] = defaultdict(Decimal)
        for a in s.scalars(select(PaymentAllocation)):
            allocated[a.installment_id] += a.fees + a.interest + a.principal
        installments = list(s.scalars(select(Installment)))
        assert sum(i.total_paid for i in installments) == paid_in_files
        assert all(allocated[i.id] == i.total_paid for i in installments)
        assert {p.source for p in s.scalars(select(Payment))} == {"import"}
    engine.dispose()
    before = dump(fresh_db_url)

    again = run_import(EXAMPLE, database_url=fresh_db_url, pepper=PEPPER)

    assert again.changes == 0
    assert again.unchanged["payments"] == len(_rows("payments.csv"))
    assert dump(fresh_db_url) == before


def test_changed_rows_update_but_a_borrowers_own_choices_stay(
    tmp_path: Path, new_database: Callable[[str], str]
) -> None:
    url = new_database("sqlite")
    folder = _copy_example(tmp_path)
    run_import(folder, database_url=url, pepper=PEPPER)
    engine = build_engine(url)
    with Session(engine) as s, s.begin():
        daniel = s.scalars(select(Borrower).where(Borrower.external_id == "FX-C-1002")).one()
        # Daniel opted out of WhatsApp in chat and switched to Swahili after the first import.
        s.execute(
            update(Consent)
            .where(Consent.borrower_id == daniel.id, Consent.channel == "whatsapp")
            .values(opted_in=False)
        )
        daniel.preferred_language = "sw"

    def rename(rows: list[list[str]]) -> None:
        rows[2][2] = "Daniel K. Mwaura"

    _edit(folder, "borrowers.csv", rename)
    report = run_import(folder, database_url=url, pepper=PEPPER)

    assert report.updated["borrowers"] == 1
    assert report.changes == 1
    with Session(engine) as s:
        daniel = s.scalars(select(Borrower).where(Borrower.external_id == "FX-C-1002")).one()
        assert daniel.full_name == "Daniel K. Mwaura"
        assert daniel.preferred_language == "sw"
        whatsapp = s.scalars(
            select(Consent).where(Consent.borrower_id == daniel.id, Consent.channel == "whatsapp")
        ).one()
        assert whatsapp.opted_in is False
    engine.dispose()


def test_bad_rows_import_nothing_and_every_error_is_reported(
    tmp_path: Path, new_database: Callable[[str], str]
) -> None:
    url = new_database("sqlite")
    folder = _copy_example(tmp_path)

    def break_borrowers(rows: list[list[str]]) -> None:
        rows[1][3] = "0733100201"  # line 2: not E.164
        rows[3][5] = "1995-02-30"  # line 4: no such day
        rows[5][0] = rows[4][0]  # line 6: same external_id as line 5

    def break_loans(rows: list[list[str]]) -> None:
        rows[2][5] = "KSH"  # line 3: not ISO 4217
        rows[3][1] = "FX-C-9999"  # line 4: unknown borrower
        rows[4][4] = "150,000"  # line 5: not an amount

    # Payments of loans whose own rows are fine (a broken loan's rows are not reported twice).
    payments = [r["loan_external_id"] for r in _rows("payments.csv")]
    mexican, senegalese = payments.index("FX-L-7001") + 1, payments.index("FX-L-6002") + 1

    def break_payments(rows: list[list[str]]) -> None:
        rows[mexican][3] = "KES"  # an MXN loan
        rows[senegalese][4] = "2026-09-27 10:02"  # no UTC offset

    _edit(folder, "borrowers.csv", break_borrowers)
    _edit(folder, "loans.csv", break_loans)
    _edit(folder, "payments.csv", break_payments)

    with pytest.raises(ImportFailed) as failed:
        run_import(folder, database_url=url, pepper=PEPPER)

    found: dict[tuple[str, int], str] = defaultdict(str)
    for issue in failed.value.issues:
        found[(issue.file, issue.line)] += issue.reason + "; "
    expected = {
        ("borrowers.csv", 2): "not a phone number in E.164 form",
        ("borrowers.csv", 4): "not a date",
        ("borrowers.csv", 6): "duplicate external_id 'FX-C-2001'",
        ("loans.csv", 3): "not an ISO 4217 currency",
        ("loans.csv", 4): "'FX-C-9999' is in neither borrowers.csv nor the database",
        ("loans.csv", 5): "not an amount",
        # Line 6 of borrowers.csv no longer holds FX-C-2002.
        ("loans.csv", 6): "'FX-C-2002' is in neither borrowers.csv nor the database",
        ("payments.csv", mexican + 1): "currency KES is not the loan's currency MXN",
        ("payments.csv", senegalese + 1): "has no UTC offset",
    }
    for where, words in expected.items():
        assert words in found.get(where, ""), (where, found)
    # Nothing else: rows that depend on a bad row are not reported again.
    assert set(found) == set(expected)
    engine = build_engine(url)
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Borrower)) == 0
        assert s.scalar(select(func.count()).select_from(Loan)) == 0
        assert s.scalar(select(func.count()).select_from(Payment)) == 0
    engine.dispose()

    result = CliRunner().invoke(app, ["import", str(folder), "--database-url", url])
    assert result.exit_code == 1
    assert "nothing was imported" in result.output
    assert "payments.csv" in result.output and "borrowers.csv" in result.output


def test_a_missing_file_or_column_is_reported(
    tmp_path: Path, new_database: Callable[[str], str]
) -> None:
    url = new_database("sqlite")
    folder = _copy_example(tmp_path)
    (folder / "schedules.csv").unlink()

    def drop_phone(rows: list[list[str]]) -> None:
        for row in rows:
            del row[3]

    _edit(folder, "borrowers.csv", drop_phone)
    with pytest.raises(ImportFailed) as failed:
        run_import(folder, database_url=url, pepper=PEPPER)

    reasons = [str(issue) for issue in failed.value.issues]
    assert "borrowers.csv:1: missing column(s): phone" in reasons
    assert "schedules.csv:0: file is missing" in reasons


def test_cli_imports_with_a_progress_bar(
    tmp_path: Path, new_database: Callable[[str], str]
) -> None:
    url = new_database("sqlite")
    result = CliRunner().invoke(app, ["import", str(EXAMPLE), "--database-url", url])
    assert result.exit_code == 0, result.output
    assert f"{len(_rows('payments.csv'))}/{len(_rows('payments.csv'))}" in result.output
    assert "Imported" in result.output


def test_payments_of_new_loans_land_as_recorded_one_by_one(
    tmp_path: Path, new_database: Callable[[str], str]
) -> None:
    """Loans created with their payments (bulk) equal loans paid later (``record_payment``)."""
    at_once, in_two_steps = new_database("sqlite"), new_database("sqlite")
    run_import(EXAMPLE, database_url=at_once, pepper=PEPPER)
    without_payments = _copy_example(tmp_path)
    (without_payments / "payments.csv").unlink()
    run_import(without_payments, database_url=in_two_steps, pepper=PEPPER)
    second = run_import(EXAMPLE, database_url=in_two_steps, pepper=PEPPER)
    assert second.created["payments"] == len(_rows("payments.csv"))

    def state(url: str) -> dict[str, Any]:
        engine = build_engine(url)
        with Session(engine) as s:
            seq = {i.id: (i.loan_id, i.seq) for i in s.scalars(select(Installment))}
            reference = {p.id: p.external_reference for p in s.scalars(select(Payment))}
            out = {
                "loans": sorted((x.external_id, str(x.status)) for x in s.scalars(select(Loan))),
                "installments": sorted(
                    (
                        i.loan_id,
                        i.seq,
                        i.fees_paid,
                        i.interest_paid,
                        i.principal_paid,
                        str(i.status),
                        i.paid_on,
                    )
                    for i in s.scalars(select(Installment))
                ),
                "payments": sorted(
                    (p.external_reference, p.amount, p.currency, p.received_at, p.method, p.source)
                    for p in s.scalars(select(Payment))
                ),
                "allocations": sorted(
                    (
                        reference[a.payment_id],
                        seq[a.installment_id],
                        a.fees,
                        a.interest,
                        a.principal,
                    )
                    for a in s.scalars(select(PaymentAllocation))
                ),
            }
        engine.dispose()
        return out

    bulk, one_by_one = state(at_once), state(in_two_steps)
    assert bulk == one_by_one
    assert any(status == "partial" for *_, status, _ in bulk["installments"])


def test_a_synthetic_export_imports_as_the_seed_writes_it(
    tmp_path: Path, new_database: Callable[[str], str]
) -> None:
    today = datetime.now(UTC).date()
    seeded, imported = new_database("sqlite"), new_database("sqlite")
    seed_portfolio(seeded, borrowers=150, seed=9, today=today, pepper=PEPPER)
    counts = write_synthetic_export(tmp_path / "export", borrowers=150, seed=9, today=today)
    report = run_import(tmp_path / "export", database_url=imported, pepper=PEPPER)
    assert report.created["borrowers"] == counts["borrowers.csv"] == 150

    def portfolio(url: str) -> dict[str, Any]:
        engine = build_engine(url)
        with Session(engine) as s:
            loan_ext = {x.id: x.external_id for x in s.scalars(select(Loan))}
            out = {
                "borrowers": sorted(
                    (
                        b.external_id,
                        b.full_name,
                        b.phone_e164,
                        b.preferred_language,
                        b.dob_hash,
                        b.national_id_last4_hash,
                    )
                    for b in s.scalars(select(Borrower))
                ),
                "loans": sorted(
                    (
                        x.external_id,
                        x.account_reference,
                        x.principal,
                        x.currency,
                        x.annual_interest_rate,
                        str(x.frequency),
                        x.disbursed_on,
                        str(x.status),
                        x.cycle,
                    )
                    for x in s.scalars(select(Loan))
                ),
                "installments": sorted(
                    (
                        loan_ext[i.loan_id],
                        i.seq,
                        i.due_date,
                        i.total_due,
                        i.fees_paid,
                        i.interest_paid,
                        i.principal_paid,
                        str(i.status),
                        i.paid_on,
                    )
                    for i in s.scalars(select(Installment))
                ),
                "payments": sorted(
                    (p.external_reference, loan_ext[p.loan_id], p.amount, p.received_at, p.method)
                    for p in s.scalars(select(Payment))
                ),
            }
        engine.dispose()
        return out

    assert portfolio(imported) == portfolio(seeded)
