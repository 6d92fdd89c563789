"""Reliability matrix row P-1 of the gateway: canary PII and secrets in a borrower's
conversation never reach the service logs nor Rasa's tracker.

On the session's production topology, as ``test_gateway.py``.
"""

from __future__ import annotations

import json
import re
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest

from kopa.stack import rasa_token
from tests.api.factories import today
from tests.bot.conftest import TG_SECRET, TG_TOKEN, WA_APP_SECRET, wait_until
from tests.reliability.gateway_rig import PEPPER, Rig, post_whatsapp, wa_body

pytestmark = [pytest.mark.stack, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(1800)]


P1_DOB = date(1979, 7, 23)
P1_NATIONAL_ID = "90817364"  # typed whole; the check uses its last 4 digits
P1_AMOUNT = Decimal("7319.47")  # a balance no other test on the rig has


def _p1_borrower(rig: Rig) -> str:
    """A borrower whose phone, factors and balance are canaries."""
    due = today() - timedelta(days=9)
    return rig.add_borrower(dob=P1_DOB, national_id=P1_NATIONAL_ID, due=due, amount=str(P1_AMOUNT))


def _p1_conversation(rig: Rig) -> tuple[str, str]:
    """A borrower's whole WhatsApp conversation with canaries in it, through both gateways."""
    phone = _p1_borrower(rig)
    wa_id = phone.lstrip("+")
    turns = [
        "how much do I owe?",
        f"ok. my ID number is {P1_NATIONAL_ID}, born {P1_DOB:%d/%m/%Y}",
        "I lost my job and cannot pay this month",
    ]
    for n, body in enumerate(turns):
        before = len(rig.whatsapp.sent_texts(wa_id))
        raw = wa_body(wa_id, body, f"wamid.p1-{wa_id}-{n}")
        assert post_whatsapp(rig.gateways[n % 2].url, raw).status_code == 200
        wait_until(lambda: len(rig.whatsapp.sent_texts(wa_id)) > before, timeout=120)  # noqa: B023
    time.sleep(1.0)  # the replies' log lines, if any, are written after the send
    return phone, wa_id


def _canaries(phone: str, wa_id: str) -> dict[str, str]:
    return {
        "phone": phone,
        "phone digits": wa_id,
        "national ID": P1_NATIONAL_ID,
        "date of birth": f"{P1_DOB:%d/%m/%Y}",
        "balance": "7,319.47",
        "balance (plain)": str(P1_AMOUNT),
        "bot token": TG_TOKEN,
        "app secret": WA_APP_SECRET,
        "webhook secret": TG_SECRET,
        "pepper": PEPPER,
        "Rasa token": rasa_token(),
    }


def test_P1_canary_pii_and_secrets_never_reach_the_service_logs(rig: Rig) -> None:
    """P-1 for the logs: a conversation whose every turn carries canaries (the phone, a whole
    ID number and a birth date typed, the balance the bot answers) through both gateway
    processes; the test attaches no handler: it reads what the API, the action server, Rasa
    and the gateways wrote to their own log files while the rig ran, and the balance
    must have reached the borrower (so that the canary was really in flight)."""
    phone, wa_id = _p1_conversation(rig)
    assert any("7,319.47" in text for text in rig.whatsapp.sent_texts(wa_id))
    logs = {
        path.name: path.read_text(errors="replace")
        for path in [*rig.log_dir.glob("*.log"), *(g.log_path for g in rig.gateways)]
    }
    assert {"api.log", "actions.log", "rasa.log", "gateway-0.log", "gateway-1.log"} <= set(logs)
    assert sum(len(text) for text in logs.values()) > 0
    hits = [
        (name, what)
        for name, text in logs.items()
        for what, value in _canaries(phone, wa_id).items()
        if re.search(rf"(?<![0-9]){re.escape(value)}(?![0-9])", text)
    ]
    assert hits == []


def test_P1_canary_pii_never_reaches_the_rasa_tracker(rig: Rig) -> None:
    """P-1 for Rasa's event stream: the stored tracker of that conversation holds no canary
    (typed text and the bot's rendered account data are redacted as it is saved), yet the
    balance asked in the first turn was answered after the check in the second: the dialogue
    lost nothing it needed from the turns before."""
    phone, wa_id = _p1_conversation(rig)
    assert any("7,319.47" in text for text in rig.whatsapp.sent_texts(wa_id))
    dump = json.dumps(rig.tracker(rig.conversation("whatsapp", wa_id)), ensure_ascii=False)
    hits = [what for what, value in _canaries(phone, wa_id).items() if value in dump]
    assert hits == []
