"""``kopa import``: borrowers, loans, schedules and payments from a folder of CSV files.

:func:`run_import` reads and checks everything first; a file set with any problem imports
nothing. The format is in ``docs/import-format.md``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from api.core.db import build_engine
from portfolio.importer.load import ImportReport, Reporter, import_export
from portfolio.importer.validate import ImportFailed, Issue, read_export

__all__ = ["ImportFailed", "ImportReport", "Issue", "Reporter", "run_import"]


def run_import(
    folder: Path, *, database_url: str, pepper: str, reporter: Reporter | None = None
) -> ImportReport:
    """Import ``folder`` into ``database_url`` in one transaction.

    Raises:
        ImportFailed: with every problem found (file, line, reason); nothing was written.
    """
    export = read_export(folder)
    engine = build_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            return import_export(session, export, pepper=pepper, reporter=reporter)
    finally:
        engine.dispose()
