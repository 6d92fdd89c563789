"""One running stack for the conversation tests: loan API on a seeded SQLite file, the action
server and Rasa with the trained model, all on free localhost ports, stopped at the end."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from api.core.migrate import upgrade
from bot.channels.base import InboundMessage, OutboundMessage
from bot.conversation import ChatRegistry, ConversationService
from bot.rasa_client import TURN_SECONDS, RasaClient
from i18n import SUPPORTED_LOCALES, render
from kopa.paths import RASA_BIN
from kopa.stack import Stack, running_stack
from tests.api.factories import (
    DEFAULT_DOB,
    DEFAULT_NATIONAL_ID_LAST4,
    make_borrower,
    make_branch,
    make_loan,
    make_officer,
    today,
    unique_phone,
)

pytestmark = pytest.mark.stack

# As in script_runner.py: under the whole suite on two cores a local connect has taken over the
# gateway's 2 s (a sw verification test heard "try again" on a ConnectTimeout). These tests check
# the dialogue; the outage path has its own tests in tests/bot.
LOADED_MACHINE_TIMEOUT = httpx.Timeout(TURN_SECONDS, connect=5.0)
OFFICER = "Grace Otieno"
INSTALLMENT = ("2500.00", "400.00", "100.00")  # principal, interest, fees: 3000.00 a month


@dataclass(frozen=True)
class Borrower:
    phone: str
    locale: str
    first_name: str
    reference: str
    outstanding: Decimal = Decimal("9000.00")
    arrears: Decimal = Decimal("3000.00")
    next_due: object = None


@dataclass
class World:
    stack: Stack
    engine: Engine
    borrowers: dict[str, Borrower]
    database_url: str
    token: str
    log_dir: Path


def _seed(session: Session) -> dict[str, Borrower]:
    branch = make_branch(session)
    officer = make_officer(session, branch, name=OFFICER)
    start = today()
    schedule = [
        (start - timedelta(days=20), *INSTALLMENT),
        (start + timedelta(days=10), *INSTALLMENT),
        (start + timedelta(days=40), *INSTALLMENT),
    ]
    names = {"en": "Amina Kamau", "fr": "Awa Diop", "es": "Lucía Pérez", "sw": "Zawadi Mwangi"}
    seeded = {}
    # One borrower per language, and another per language for the tests that change the
    # borrower's own settings (language), so that no test sees another's changes.
    keys = [
        *SUPPORTED_LOCALES,
        *(f"switch-{locale}" for locale in SUPPORTED_LOCALES),
        "payer-en",  # receives a payment: balances of the others stay as seeded
    ]
    for key in keys:
        locale = key.split("-")[-1]
        borrower = make_borrower(
            session, branch, officer=officer, full_name=names[locale], phone=unique_phone(),
            language=locale,
        )  # fmt: skip
        loan = make_loan(session, borrower, schedule=schedule)
        seeded[key] = Borrower(
            phone=borrower.phone_e164,
            locale=locale,
            first_name=names[locale].split()[0],
            reference=loan.account_reference,
            next_due=schedule[1][0],
        )
    session.commit()
    return seeded


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not RASA_BIN.exists():
        if os.environ.get("KOPA_REQUIRE_SERVICES") == "1":
            pytest.fail("Rasa is not installed: run `make setup` (KOPA_REQUIRE_SERVICES=1)")
        pytest.skip("Rasa is not installed: run `make setup` to run the conversation tests")
    root = tmp_path_factory.mktemp("stack")
    database_url = f"sqlite:///{root / 'kopa.db'}"
    upgrade(database_url)
    engine = create_engine(database_url)
    with Session(engine) as session:
        borrowers = _seed(session)
    token = f"stack-test-{uuid.uuid4().hex}"
    with running_stack(database_url, token=token, log_dir=root / "logs") as stack:
        yield World(stack, engine, borrowers, database_url, token, root / "logs")
    engine.dispose()


@dataclass
class Chat:
    """One chat turned into text: what the borrower types, what they read back."""

    service: ConversationService
    channel: str
    user: str
    locale: str
    phone: str | None
    replies: list[OutboundMessage] = field(default_factory=list)

    async def say(self, text: str, *, phone: str | None = None) -> list[str]:
        inbound = InboundMessage(
            channel=self.channel,
            sender=self.user,
            chat_id=self.user,
            text=text,
            message_id=uuid.uuid4().hex,
            locale_hint=self.locale,
            proven_phone=phone or self.phone,
        )
        self.replies = await self.service.handle(inbound)
        return [reply.text for reply in self.replies]

    async def verify(self, first_question: str) -> list[str]:
        """Ask ``first_question``, answer the knowledge factor, return the replies after it."""
        asked = await self.say(first_question)
        dob = render("conv.verify.ask_dob", self.locale)
        answer = DEFAULT_DOB.strftime("%d/%m/%Y") if dob in asked else DEFAULT_NATIONAL_ID_LAST4
        return await self.say(answer)


class ChatFactory:
    def __init__(self, world: World) -> None:
        assert world.stack.rasa_url is not None
        self.world = world
        self.services: list[ConversationService] = []

    def __call__(
        self,
        locale: str,
        *,
        channel: str = "terminal",
        with_phone: bool = True,
        borrower_key: str | None = None,
    ) -> Chat:
        borrower = self.world.borrowers[borrower_key or locale]
        service = ConversationService(
            RasaClient(str(self.world.stack.rasa_url), timeout=LOADED_MACHINE_TIMEOUT),
            ChatRegistry(
                str(self.world.stack.api_url), self.world.token, timeout=LOADED_MACHINE_TIMEOUT
            ),
        )
        self.services.append(service)
        # A fresh chat per test: identities, lockouts and dialogue state never leak across tests.
        user = {
            "terminal": f"{borrower.phone.lstrip('+')}{uuid.uuid4().int % 10**6:06d}",
            "telegram": str(uuid.uuid4().int % 10**9),
            "whatsapp": f"{borrower.phone.lstrip('+')}",
        }[channel]
        phone = borrower.phone if with_phone else None
        return Chat(service, channel, user, locale, phone)


@pytest.fixture
async def chat(world: World) -> object:
    factory = ChatFactory(world)
    yield factory
    for service in factory.services:
        await service.aclose()


def now() -> datetime:
    return datetime.now(UTC)
