"""`kopa chat` scripted through stdin, against the running stack and without one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.channels.terminal import CONTINUATION
from i18n import format_money, render
from kopa.paths import ROOT
from kopa.stack import free_port
from tests.api.factories import DEFAULT_DOB
from tests.conversation.conftest import World

pytestmark = pytest.mark.stack


def kopa_chat(
    *args: str, stdin: str = "", token: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = os.environ | ({"KOPA_SERVICE_TOKEN": token} if token else {})
    return subprocess.run(
        [sys.executable, "-m", "kopa.cli", "chat", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_scripted_chat_verifies_and_answers_in_swahili(world: World) -> None:
    borrower = world.borrowers["sw"]
    lines = ["salio langu ni ngapi", DEFAULT_DOB.strftime("%d/%m/%Y"), "4821", "/quit"]
    result = kopa_chat(
        "--phone", borrower.phone, "--lang", "sw", "--rasa-url", str(world.stack.rasa_url),
        "--api-url", str(world.stack.api_url), stdin="\n".join(lines) + "\n", token=world.token,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert render("conv.verify.done", "sw") in out
    assert format_money("9000", "KES", "sw") in out
    # Only the bot's words (a message's further lines indented under its first) and buttons.
    assert all(line.startswith(("kopa> ", CONTINUATION, "  [")) for line in out.splitlines())


def test_chat_without_a_running_stack_says_what_is_missing() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = kopa_chat("--phone", "+254700000001", "--rasa-url", url)
    assert result.returncode == 2
    assert "Rasa is not answering" in result.stderr and "--start" in result.stderr


def test_chat_says_when_rasa_answers_but_the_loan_api_does_not(world: World) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = kopa_chat(
        "--phone", "+254700000001", "--rasa-url", str(world.stack.rasa_url), "--api-url", url
    )
    assert result.returncode == 2
    assert f"The loan API is not answering at {url}" in result.stderr
