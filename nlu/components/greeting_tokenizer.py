"""Whitespace tokens without the salutation that opens a longer message.

"Bonjour, je veux connaitre le reste de mon credit" is a balance question, but its greeting is
the part the classifier knows best, and it answers ``greet``. Borrowers open most messages that
way ("hola buenas, cuánto debo?", "habari, nataka kulipa"), so the greeting, and the words that
address the bot after it ("sir", "madame", "ndugu"), are left out of the tokens whenever at least
two words follow them; a message that is only a greeting keeps all of its tokens.

Only the tokens change: the text, the entities' character offsets and what the language gate
reads stay as the borrower wrote them.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from components.language_gate import fold

# Salutations in the bot's languages and the spellings people text them in, folded (lower case,
# no accents). Several-word ones first, so that "buenas tardes" goes whole.
GREETINGS = (
    ("good", "morning"), ("good", "afternoon"), ("good", "evening"), ("gud", "morning"),
    ("bonne", "journee"), ("bonne", "soiree"),
    ("buenos", "dias"), ("buenas", "tardes"), ("buenas", "noches"), ("buen", "dia"),
    ("que", "tal"),
    ("habari", "yako"), ("habari", "yenu"), ("habari", "za", "asubuhi"),
    ("habari", "ya", "asubuhi"), ("habari", "za", "mchana"), ("habari", "za", "jioni"),
    ("hi",), ("hello",), ("helo",), ("hallo",), ("hey",), ("hiya",), ("morning",), ("evening",),
    ("bonjour",), ("bonsoir",), ("bjr",), ("bsr",), ("slt",), ("salut",), ("coucou",),
    ("allo",), ("hola",), ("holaa",), ("buenas",), ("buenos",), ("saludos",),
    ("habari",), ("jambo",), ("hujambo",), ("mambo",), ("niaje",), ("sasa",), ("salaam",),
    ("salamu",), ("shikamoo",), ("hodi",),
)  # fmt: skip
# Words that address the bot, left out only right after a greeting ("mama" alone may be the
# borrower's mother).
ADDRESS = frozenset(
    {
        "sir", "madam", "maam", "mam", "there", "team", "kopa", "all",
        "monsieur", "madame", "mr", "mme", "msieur", "mademoiselle",
        "senor", "senora", "senorita", "joven", "amigo", "amiga",
        "ndugu", "bwana", "mzee", "mama", "dada", "kaka", "rafiki",
    }
)  # fmt: skip
# A greeting is left out only when this many words are left after it.
MIN_WORDS_LEFT = 2


def salutation_length(words: list[str]) -> int:
    """How many of ``words`` (folded) open the message as a salutation: greetings, then words
    addressing the bot; 0 if the message does not open with a greeting."""
    at = 0
    while True:
        match = next((g for g in GREETINGS if tuple(words[at : at + len(g)]) == g), None)
        if match is None:
            break
        at += len(match)
    if at == 0:
        return 0
    while at < len(words) and words[at] in ADDRESS:
        at += 1
    return at


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER], is_trainable=False)
class GreetingAwareTokenizer(WhitespaceTokenizer):
    """:class:`WhitespaceTokenizer` whose text tokens leave out an opening salutation."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return WhitespaceTokenizer.get_default_config()

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        tokens = super().tokenize(message, attribute)
        if attribute != TEXT:
            return tokens
        skip = salutation_length([fold(token.text) for token in tokens])
        if skip and len(tokens) - skip >= MIN_WORDS_LEFT:
            return tokens[skip:]
        return tokens
