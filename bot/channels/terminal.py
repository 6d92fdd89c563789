"""The terminal as a channel: ``kopa chat`` reads lines from stdin and prints the replies.

It goes through the same path as Telegram and WhatsApp (ConversationService → Rasa REST →
actions → loan API), with the ``--phone`` option as the phone the channel has proven. Buttons
are printed numbered; typing the number sends the button's payload, as tapping it would.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import TextIO

from bot.channels.base import Button, InboundMessage, OutboundMessage, SendOutcome, SendResult
from bot.conversation import ConversationService

CONTINUATION = " " * len("kopa> ")


class TerminalGateway:
    """Print outbound messages to a text stream (stdout by default)."""

    name = "terminal"

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self.last_buttons: tuple[Button, ...] = ()

    async def send(self, message: OutboundMessage) -> SendResult:
        first, *rest = message.text.split("\n")
        # A list (schedule, payments) continues under the first line, so it reads as one message.
        lines = [f"kopa> {first}", *(f"{CONTINUATION}{line}" for line in rest)]
        lines += [f"  [{n}] {b.title}" for n, b in enumerate(message.buttons, start=1)]
        if message.request_contact and message.contact_button_title:
            lines.append(f"  [{message.contact_button_title}]")
        self._out.write("\n".join(lines) + "\n")
        self._out.flush()
        self.last_buttons = message.buttons
        return SendResult(SendOutcome.sent, provider_message_id=uuid.uuid4().hex)


def phone_digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


class TerminalChat:
    """One borrower's conversation in the terminal."""

    def __init__(
        self,
        service: ConversationService,
        gateway: TerminalGateway,
        *,
        phone: str,
        locale: str | None = None,
    ) -> None:
        self._service = service
        self._gateway = gateway
        self._phone = phone
        self._user = phone_digits(phone)
        self._locale = locale

    def inbound(self, text: str) -> InboundMessage:
        choice = text.strip()
        buttons = self._gateway.last_buttons
        if choice.isdigit() and 1 <= int(choice) <= len(buttons):
            text = buttons[int(choice) - 1].payload
        return InboundMessage(
            channel="terminal",
            sender=self._user,
            chat_id=self._user,
            text=text,
            message_id=uuid.uuid4().hex,
            locale_hint=self._locale,
            proven_phone=self._phone,
        )

    async def say(self, text: str) -> list[OutboundMessage]:
        """Send one line and print every reply; returns the replies (for scripts and tests)."""
        replies = await self._service.handle(self.inbound(text))
        self._gateway.last_buttons = ()
        for reply in replies:
            await self._gateway.send(reply)
        return replies

    async def run(self, lines: TextIO | None = None) -> None:
        """Read lines until end of input (or ``/quit``) and answer each."""
        source = lines or sys.stdin
        while True:
            line = await asyncio.to_thread(source.readline)
            if not line:
                return
            text = line.strip()
            if not text:
                continue
            if text in ("/quit", "/exit"):
                return
            await self.say(text)
