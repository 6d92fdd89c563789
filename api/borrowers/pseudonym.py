"""The pseudonym a chat is known by outside the systems of record (Rasa's sender id).

``p`` + the first 40 hex digits of HMAC-SHA256(``KOPA_HASH_PEPPER``, ``<channel>:<user id>``):
stable for a chat, not reversible without the pepper, and never all digits, so it can never be
mistaken for a Telegram or WhatsApp id. Only the loan API (which computes it when the gateway
registers a chat, and keeps the real id beside it) can tell whose chat it is.
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "p"


def chat_pseudonym(pepper: str, channel: str, user: str) -> str:
    digest = hmac.new(pepper.encode(), f"{channel}:{user}".encode(), hashlib.sha256).hexdigest()
    return PREFIX + digest[:40]


def is_pseudonym(user: str) -> bool:
    return (
        len(user) == 41
        and user.startswith(PREFIX)
        and all(c in "0123456789abcdef" for c in user[1:])
    )
