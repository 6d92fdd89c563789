"""Write a synthetic portfolio as an import folder (the format of ``docs/import-format.md``).

The rows come from the same generator as ``kopa seed`` (same seed and day, same people, loans and
payments), so a seeded database and an imported export can be compared, and the import can be
measured at any size. The database keeps knowledge factors only as hashes, so the export is drawn
from the generator, not read back from a database.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from portfolio.importer.validate import COLUMNS as FILE_COLUMNS
from portfolio.synthetic.generator import PortfolioGenerator
from portfolio.synthetic.tables import SHAPES


class _CsvFormat:
    """Ids from 1 and ISO 8601 times with an offset, as the import format wants them."""

    ts_suffix = "+00:00"

    def next_id(self, table: str) -> int:
        return 1

    def ts(self, value: datetime) -> str:
        return value.astimezone(UTC).isoformat()

    def clock(self, value: time) -> str:
        return value.isoformat()


def _pipe(items: list[dict[str, str]], *keys: str) -> str:
    return ";".join("|".join(item[k] for k in keys) for item in items)


def write_synthetic_export(
    folder: Path,
    *,
    borrowers: int,
    seed: int,
    today: date,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Write the portfolio ``kopa seed`` would make as CSV files; answer the rows per file."""
    folder.mkdir(parents=True, exist_ok=True)
    generator = PortfolioGenerator(
        writer=_CsvFormat(),
        borrowers=borrowers,
        seed=seed,
        today=today,
        pepper="",
        keep_factors=True,
    )
    assert generator.factors is not None
    columns = {name: required + optional for name, (required, optional) in FILE_COLUMNS.items()}
    handles = {name: (folder / name).open("w", newline="", encoding="utf-8") for name in columns}
    counts = dict.fromkeys(columns, 0)
    try:
        writers = {name: csv.writer(handle) for name, handle in handles.items()}
        for name, writer in writers.items():
            writer.writerow(columns[name])
        branch_code: dict[int, str] = {}
        officer_name: dict[int, str] = {}
        loan_ext: dict[int, str] = {}

        def out(name: str, row: list[Any]) -> None:
            writers[name].writerow(row)
            counts[name] += 1

        for done, rows in generator.chunks(2000):
            c = SHAPES["branch"].index
            for r in rows["branch"]:
                branch_code[r[c["id"]]] = r[c["code"]]
                pay = json.loads(r[c["payment_instructions"]])
                bank = pay.get("bank") or {}
                out(
                    "branches.csv",
                    [
                        r[c["code"]],
                        r[c["name"]],
                        r[c["country"]],
                        r[c["timezone"]],
                        r[c["currency"]],
                        _pipe(pay["mobile_money"], "provider", "type", "number"),
                        bank.get("name", ""),
                        bank.get("account") or "",
                        _pipe(pay["agents"], "name", "location"),
                    ],
                )
            c = SHAPES["branch_officer"].index
            for r in rows["branch_officer"]:
                officer_name[r[c["id"]]] = r[c["name"]]
                out(
                    "officers.csv",
                    [
                        branch_code[r[c["branch_id"]]],
                        r[c["name"]],
                        r[c["role"]],
                        r[c["channel"]],
                        r[c["chat_id"]],
                        r[c["locale"]],
                    ],
                )
            c = SHAPES["borrower_consent"].index
            consent: dict[tuple[int, str], bool] = {
                (r[c["borrower_id"]], r[c["channel"]]): bool(r[c["opted_in"]])
                for r in rows["borrower_consent"]
            }
            borrower_ext: dict[int, str] = {}
            c = SHAPES["borrower"].index
            for r in rows["borrower"]:
                borrower_id = r[c["id"]]
                borrower_ext[borrower_id] = r[c["external_id"]]
                dob, last4 = generator.factors.pop(borrower_id)
                opt = [consent.get((borrower_id, ch)) for ch in ("telegram", "whatsapp")]
                out(
                    "borrowers.csv",
                    [
                        r[c["external_id"]],
                        branch_code[r[c["branch_id"]]],
                        r[c["full_name"]],
                        r[c["phone_e164"]],
                        dob,
                        last4,
                        r[c["preferred_language"]],
                        officer_name.get(r[c["officer_id"]], ""),
                        *("" if o is None else ("yes" if o else "no") for o in opt),
                    ],
                )
            c = SHAPES["loan"].index
            for r in rows["loan"]:
                loan_ext[r[c["id"]]] = r[c["external_id"]]
                out(
                    "loans.csv",
                    [
                        r[c["external_id"]],
                        borrower_ext[r[c["borrower_id"]]],
                        r[c["account_reference"]],
                        r[c["product"]],
                        r[c["principal"]],
                        r[c["currency"]],
                        r[c["annual_interest_rate"]],
                        r[c["frequency"]],
                        r[c["disbursed_on"]],
                        r[c["status"]],
                        r[c["cycle"]],
                    ],
                )
            c = SHAPES["loan_installment"].index
            for r in rows["loan_installment"]:
                out(
                    "schedules.csv",
                    [
                        loan_ext[r[c["loan_id"]]],
                        r[c["seq"]],
                        r[c["due_date"]],
                        r[c["principal_due"]],
                        r[c["interest_due"]],
                        r[c["fees_due"]],
                    ],
                )
            c = SHAPES["payment"].index
            for r in rows["payment"]:
                received = r[c["received_at"]].replace(" ", "T", 1)
                out(
                    "payments.csv",
                    [
                        r[c["external_reference"]],
                        loan_ext[r[c["loan_id"]]],
                        r[c["amount"]],
                        r[c["currency"]],
                        received,
                        r[c["method"]],
                    ],
                )
            if progress:
                progress(done)
    finally:
        for handle in handles.values():
            handle.close()
    return counts
