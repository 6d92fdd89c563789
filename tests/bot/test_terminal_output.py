"""How ``kopa chat`` prints a reply: one message stays one block, however many lines it has."""

from __future__ import annotations

import io

from bot.channels.base import Button, OutboundMessage
from bot.channels.terminal import TerminalGateway


async def test_a_message_of_several_lines_reads_as_one_with_its_buttons_after() -> None:
    out = io.StringIO()
    message = OutboundMessage(
        channel="terminal",
        recipient="cli",
        text="Loan KP-1: you owe KES 9,000.00 in total.\nYour next payment is due on 4 Dec 2026.",
        buttons=(Button(title="Talk to my officer", payload="/request_officer"),),
    )
    await TerminalGateway(out).send(message)
    assert out.getvalue().splitlines() == [
        "kopa> Loan KP-1: you owe KES 9,000.00 in total.",
        "      Your next payment is due on 4 Dec 2026.",
        "  [1] Talk to my officer",
    ]
