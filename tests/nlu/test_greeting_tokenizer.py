"""The greeting-aware tokenizer candidate (nlu/components/greeting_tokenizer.py, measured in
bench/README.md and not taken): an opening salutation leaves the tokens only when a request
follows it, and the text the borrower wrote is untouched. Runs in Rasa's environment."""

from __future__ import annotations

from tests.nlu.rasa_probe import run_in_rasa

PROBE = """
import json, sys
from components.greeting_tokenizer import GreetingAwareTokenizer
from rasa.shared.nlu.training_data.message import Message
tokenizer = GreetingAwareTokenizer(GreetingAwareTokenizer.get_default_config())
out = {}
for text in json.loads(sys.argv[1]):
    message = Message(data={"text": text})
    tokenizer.process([message])
    out[text] = [t.text for t in message.get("text_tokens")] + ["|", message.get("text")]
print(json.dumps(out))
"""

MESSAGES = [
    "Bonjour, je veux connaitre le reste de mon credit svp",
    "hola buenas, cuánto debo?",
    "Good morning sir, I want to pay",
    "Hello",
    "bjr madame",
    "mama yangu ni mgonjwa",
    "sasa nifanyeje",
]


def test_a_greeting_leaves_the_tokens_only_before_a_request() -> None:
    seen: dict[str, list[str]] = run_in_rasa(PROBE, MESSAGES, timeout=120)

    def tokens(text: str) -> list[str]:
        return seen[text][: seen[text].index("|")]

    assert tokens(MESSAGES[0])[:3] == ["je", "veux", "connaitre"]
    assert tokens(MESSAGES[1]) == ["cuánto", "debo"]
    assert tokens(MESSAGES[2]) == ["I", "want", "to", "pay"]
    # Only a greeting, or a greeting and one word: kept whole.
    assert tokens("Hello") == ["Hello"] and tokens("bjr madame") == ["bjr", "madame"]
    assert tokens("sasa nifanyeje") == ["sasa", "nifanyeje"]
    # "mama" addresses the bot only after a greeting; alone it may be the borrower's mother.
    assert tokens("mama yangu ni mgonjwa")[0] == "mama"
    # The text (what the language gate and the actions read) is the borrower's.
    assert all(seen[text][-1] == text for text in MESSAGES)
