"""The delivery campaign: its configuration and one borrower per reminder, due in three days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import text
from sqlalchemy.orm import Session


def campaign_config(rate: float, folder: Path) -> tuple[Path, Any]:
    """``campaigns.yml`` in ``folder`` for Telegram at ``rate`` a second; its path and model."""
    from notifier.config import CampaignConfig

    config_data = {
        "version": 1,
        "defaults": {"closed_weekdays": [], "installment_steps": [-3]},
        "channels": {"telegram": {"per_second": rate, "per_chat_per_second": 1}},
        "delivery": {"lease_seconds": 30},
    }
    config_path = folder / "campaigns.yml"
    config_path.write_text(yaml.safe_dump(config_data))
    return config_path, CampaignConfig.model_validate(config_data)


def _noon_zone() -> str:
    offset = (12 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 12 else offset
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


def campaign_rows(url: str, count: int, config: Any) -> int:
    """``count`` borrowers, each with a verified Telegram chat and an installment due in 3 days."""
    from zoneinfo import ZoneInfo

    from api.core.db import build_engine
    from notifier.planner import Planner

    engine = build_engine(url)
    zone = _noon_zone()
    today = datetime.now(UTC).astimezone(ZoneInfo(zone)).date()
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO branch (id, code, name, country, timezone, currency, "
                "payment_instructions, extra_holidays, created_at) VALUES "
                "(1, 'BENCH', 'Bench', 'ZZ', :tz, 'KES', '{}', '[]', :now)"
            ),
            {"tz": zone, "now": now},
        )
        borrowers, identities, loans, installments = [], [], [], []
        for n in range(1, count + 1):
            borrowers.append({"id": n, "ext": f"BB{n}", "phone": f"+2547{n:08d}", "now": now})
            identities.append({"id": n, "user": str(800000000 + n), "b": n, "now": now})
            loans.append({"id": n, "ext": f"BL{n}", "ref": f"BR{n:07d}", "b": n, "today": today})
            installments.append({"id": n, "loan": n, "due": today + timedelta(days=3)})
        conn.execute(
            text(
                "INSERT INTO borrower (id, external_id, branch_id, full_name, phone_e164, "
                "preferred_language, dob_hash, national_id_last4_hash, created_at) VALUES "
                "(:id, :ext, 1, 'Bench Borrower', :phone, 'en', 'x', 'y', :now)"
            ),
            borrowers,
        )
        conn.execute(
            text(
                "INSERT INTO borrower_channel_identity (id, channel, external_user_id, "
                "borrower_id, verified_at, failed_attempts, created_at) VALUES "
                "(:id, 'telegram', :user, :b, :now, 0, :now)"
            ),
            identities,
        )
        conn.execute(
            text(
                "INSERT INTO loan (id, external_id, account_reference, borrower_id, product, "
                "principal, currency, annual_interest_rate, frequency, disbursed_on, status, "
                "cycle, collection_paused, created_at) VALUES (:id, :ext, :ref, :b, 'bench', "
                "1000, 'KES', 18, 'monthly', :today, 'active', 1, false, CURRENT_TIMESTAMP)"
            ),
            loans,
        )
        conn.execute(
            text(
                "INSERT INTO loan_installment (id, loan_id, seq, due_date, principal_due, "
                "interest_due, fees_due, principal_paid, interest_paid, fees_paid, status) "
                "VALUES (:id, :loan, 1, :due, 1000, 0, 0, 0, 0, 0, 'pending')"
            ),
            installments,
        )
    with Session(engine) as session:
        result = Planner(config).plan(session, datetime.now(UTC), write=True)
        session.commit()
    engine.dispose()
    return result.inserted
