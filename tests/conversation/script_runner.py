"""Play the frozen borrower conversation scripts (``tests/conversation/scripts``) through the stack.

A script is a whole conversation written from the borrower's side (format and vocabulary in
``tests/conversation/scripts/README.md``). :class:`ScriptPlayer` runs the real stack once (loan
API on SQLite, action server, Rasa) and plays each script the way the WhatsApp channel does: the
sender id is the persona's own phone number, every message carries that number as the proven
phone, and WhatsApp gives no language hint, so the bot must follow the language the borrower
writes in. Every script starts from its persona's documented state in
``portfolio/demo.py``, isolated from every other script: the demo portfolio is seeded once
into a template database, which is copied over the loan API's database (SQLite's online backup,
so the running API sees it at its next transaction) before each script, and Rasa's conversation
for that sender is emptied, so the script starts a new conversation. What each turn and the
outcome are checked against is in ``script_checks.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.orm import Session

from api.borrowers.pseudonym import chat_pseudonym
from api.core.config import DEV_HASH_PEPPER
from api.core.db import build_engine
from api.core.migrate import upgrade
from bot.channels.base import InboundMessage
from bot.conversation import ChatRegistry, ConversationService, sender_id
from bot.rasa_client import RasaClient
from bot.render import payload_locale
from i18n import normalize_locale
from kopa.stack import Stack, rasa_token, running_stack
from portfolio.demo import ensure_demo_portfolio
from tests.api.factories import today
from tests.conversation.persona_facts import PersonaFacts, persona_facts
from tests.conversation.script_checks import (
    Reply,
    ScriptResult,
    TurnRecord,
    check_outcome,
    check_turn,
    failed_tries,
    read_outcome,
)
from tests.conversation.script_format import CHANNEL, PERSONAS, Script

PEPPER = DEV_HASH_PEPPER  # the `kopa demo` default: the factor asked per phone is the demo's


# A shared 2-core machine under load can take longer than the gateway's 8 s for one turn; the
# scripts judge what the bot says, not how fast, so a slow turn must not turn into "try again".
TURN_TIMEOUT_SECONDS = 60.0


class RecordingRasaClient(RasaClient):
    """The gateway's Rasa client, keeping each answer's raw payloads for the key checks."""

    def __init__(self, base_url: str) -> None:
        super().__init__(base_url, timeout=httpx.Timeout(TURN_TIMEOUT_SECONDS, connect=5.0))
        self.answers: list[list[dict[str, Any]]] = []

    async def send(
        self, sender: str, message: str, metadata: dict[str, Any]
    ) -> list[dict[str, Any]]:
        replies = await super().send(sender, message, metadata)
        self.answers.append(replies)
        return replies


class ScriptPlayer:
    """The running stack and the seeded template; :meth:`play` runs one script in isolation."""

    def __init__(
        self,
        stack: Stack,
        database: Path,
        template: Path,
        facts: dict[str, PersonaFacts],
        token: str,
    ):
        assert stack.rasa_url is not None
        self.stack = stack
        self.token = token
        self.database = database
        self.template = template
        self.facts = facts
        self.engine = build_engine(f"sqlite:///{database}")
        self._http = httpx.Client(base_url=stack.rasa_url, timeout=10.0)

    @classmethod
    @contextlib.contextmanager
    def start(cls, root: Path, **stack_options: Any) -> Iterator[ScriptPlayer]:
        """Seed the demo portfolio into a template, start the stack on a copy of it."""
        template = root / "demo-template.db"
        database = root / "kopa.db"
        facts = seed_template(template)
        _restore(template, database)
        token = f"scripts-{uuid.uuid4().hex}"
        env = {"KOPA_HASH_PEPPER": PEPPER, **stack_options.pop("extra_env", {})}
        with running_stack(
            f"sqlite:///{database}",
            token=token,
            log_dir=root / "logs",
            extra_env=env,
            **stack_options,
        ) as stack:
            player = cls(stack, database, template, facts, token)
            try:
                yield player
            finally:
                player.close()

    def close(self) -> None:
        self._http.close()
        self.engine.dispose()

    def _reset(self, script: Script) -> str:
        """A new conversation from the persona's documented state; returns the sender id."""
        _restore(self.template, self.database)
        user = PERSONAS[script.persona].phone.lstrip("+")
        # Rasa keeps the conversation per sender id (the phone): empty it, so the next message
        # starts a new session (action_session_start) as a first contact does.
        # Rasa knows the chat only by the pseudonym the loan API gives it.
        sender = sender_id(CHANNEL, chat_pseudonym(PEPPER, CHANNEL, user))
        response = self._http.put(
            f"/conversations/{sender}/tracker/events", params={"token": rasa_token()}, json=[]
        )
        response.raise_for_status()
        return user

    def play(self, script: Script) -> ScriptResult:
        return asyncio.run(self.play_async(script))

    async def play_async(self, script: Script) -> ScriptResult:
        started = time.perf_counter()
        spec = PERSONAS[script.persona]
        facts = self.facts[script.persona]
        user = self._reset(script)
        result = ScriptResult(script)
        client = RecordingRasaClient(str(self.stack.rasa_url))
        registry = ChatRegistry(str(self.stack.api_url), self.token)
        service = ConversationService(client, registry, deadline_seconds=TURN_TIMEOUT_SECONDS)
        locale = normalize_locale(None)  # WhatsApp gives no language hint
        local_today = datetime.now(UTC).astimezone(ZoneInfo(facts.timezone)).date()
        try:
            for number, turn in enumerate(script.turns, start=1):
                tries_before = self._failed_tries()
                inbound = InboundMessage(
                    channel=CHANNEL,
                    sender=user,
                    chat_id=user,
                    text=turn.user,
                    message_id=uuid.uuid4().hex,
                    proven_phone=spec.phone,
                )
                answers_before = len(client.answers)
                sent = time.perf_counter()
                outbound = await service.handle(inbound)
                seconds = time.perf_counter() - sent
                raw = client.answers[-1] if len(client.answers) > answers_before else []
                replies = []
                for payload in raw:
                    custom = payload.get("custom")
                    if not isinstance(custom, dict):
                        continue
                    # The locale the gateway renders it in, carried on as bot/conversation.py does.
                    locale = payload_locale(custom, locale)
                    if isinstance(custom.get("key"), str):
                        replies.append(Reply(custom["key"], locale))
                texts = [m.text for m in outbound] + [b.title for m in outbound for b in m.buttons]
                added = self._failed_tries() - tries_before
                record = TurnRecord(turn.user, replies, texts, added, seconds)
                result.turns.append(record)
                said = [t.user for t in script.turns[:number]]
                result.failures += check_turn(
                    number, turn.expect, record, facts, said=said, day=local_today
                )
        finally:
            await service.aclose()
        outcome = read_outcome(self.engine, spec, now=datetime.now(UTC))
        result.failures += check_outcome(script.outcome, outcome, local_today=local_today)
        result.seconds = time.perf_counter() - started
        return result

    def _failed_tries(self) -> int:
        with Session(self.engine) as session:
            return failed_tries(session)


def seed_template(template: Path) -> dict[str, PersonaFacts]:
    """Migrate ``template``, seed the demo portfolio as of today, answer each persona's facts."""
    url = f"sqlite:///{template}"
    upgrade(url)
    engine = build_engine(url)
    day = today()
    try:
        with Session(engine, expire_on_commit=False) as session:
            ensure_demo_portfolio(session, today=day, pepper=PEPPER)
            session.commit()
            return {key: persona_facts(session, spec, day=day) for key, spec in PERSONAS.items()}
    finally:
        engine.dispose()


def _restore(template: Path, database: Path) -> None:
    """Copy ``template`` over ``database`` with SQLite's backup API: safe while the loan API has
    the file open (its connections see the copy from their next transaction)."""
    source = sqlite3.connect(template)
    target = sqlite3.connect(database, timeout=30)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
