"""The campaign policy and the templates are read once, but every caller gets a copy of its own."""

from __future__ import annotations

from sqlalchemy.orm import Session

from notifier.config import load_campaigns, load_templates
from notifier.delivery import Deliverer
from notifier.planner import Planner


def _no_session() -> Session:
    raise AssertionError("no database here")


def test_a_change_to_a_loaded_policy_reaches_no_later_planner_or_deliverer() -> None:
    """A test once sped up Telegram and shortened the lease on the policy that
    ``load_campaigns()`` returned; every planner and deliverer built after it in the process
    inherited 1.5 s leases, and the notifier tests that ran later left their rows pending."""
    pristine = load_campaigns().model_dump()
    changed = load_campaigns()
    changed.delivery.lease_seconds = 1.5
    changed.channels["telegram"] = changed.channels["telegram"].model_copy(
        update={"per_second": 30, "per_chat_per_second": 30}
    )
    changed.defaults.installment_steps.append(99)

    deliverer = Deliverer(session_factory=_no_session, gateways={}, worker_id="config-test")
    try:
        assert deliverer.config.model_dump() == pristine
    finally:
        deliverer.close()
    assert Planner().config.model_dump() == pristine
    assert load_campaigns().model_dump() == pristine


def test_a_change_to_loaded_templates_reaches_no_later_caller() -> None:
    pristine = load_templates().model_dump()
    changed = load_templates()
    changed.templates.clear()

    assert load_templates().model_dump() == pristine
