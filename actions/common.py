"""What every action shares: who is talking, in which language, and how to answer with keys.

The identity comes only from ``tracker.sender_id`` (the chat's pseudonym, set by the gateway; the
loan API translates it back) and whether the channel proved a phone only from the latest user
message's metadata (``phone_proven``, set by the gateway, which registered the number itself with
the loan API: no phone number reaches Rasa). Slots and entities a user can type never decide whose
account is read.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from i18n import SUPPORTED_LOCALES, normalize_locale
from i18n.messages.common import TRY_AGAIN_KEY

CHANNELS = {"tg": "telegram", "wa": "whatsapp", "cli": "terminal"}


@dataclass(frozen=True)
class Caller:
    """The chat identity: ``channel`` and ``user`` as the loan API names them."""

    channel: str
    user: str


def caller(tracker: Tracker) -> Caller:
    """Split ``tg:123`` into ``telegram`` / ``123``; unknown prefixes are refused."""
    prefix, _, user = (tracker.sender_id or "").partition(":")
    if prefix not in CHANNELS or not user:
        raise ValueError("conversation id without a known channel prefix")
    return Caller(CHANNELS[prefix], user)


def latest_metadata(tracker: Tracker) -> dict[str, Any]:
    metadata = tracker.latest_message.get("metadata") if tracker.latest_message else None
    return metadata if isinstance(metadata, dict) else {}


def phone_proven(tracker: Tracker) -> bool:
    """Whether the channel proved a phone with the latest message (the API holds the number)."""
    return latest_metadata(tracker).get("phone_proven") is True


def written_in(tracker: Tracker) -> str | None:
    """The language the borrower last clearly wrote in this session (the NLU's language gate
    tells it for messages of a few words; "ok" or "2794" say nothing)."""
    for event in reversed(tracker.events or []):
        if event.get("event") == "session_started":
            return None
        if event.get("event") != "user":
            continue
        found = (event.get("parse_data") or {}).get("written_in")
        if isinstance(found, str) and found in SUPPORTED_LOCALES:
            return found
    return None


def ranked_intents(tracker: Tracker) -> list[tuple[str, float]]:
    """The NLU's intent ranking of the latest message, as (intent, confidence), likeliest first."""
    ranking = (tracker.latest_message or {}).get("intent_ranking") or []
    return [
        (str(item.get("name")), float(item.get("confidence") or 0.0))
        for item in ranking
        if isinstance(item, dict)
    ]


def language(tracker: Tracker) -> str:
    """The conversation's language: the one chosen (or the verified borrower's), else the one
    the borrower writes in, else the channel's hint (a shared phone's app may be in another)."""
    value = tracker.get_slot("language")
    if isinstance(value, str) and value in SUPPORTED_LOCALES:
        return value
    return written_in(tracker) or normalize_locale(latest_metadata(tracker).get("locale"))


def say(
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    key: str,
    *,
    locale: str | None = None,
    buttons: list[dict[str, Any]] | None = None,
    lines: list[dict[str, Any]] | None = None,
    request_contact: bool = False,
    **args: Any,
) -> None:
    """Send one message key with JSON-safe args (tagged money/dates, see ``i18n``)."""
    payload: dict[str, Any] = {"key": key, "args": args, "locale": locale or language(tracker)}
    if buttons:
        payload["buttons"] = buttons
    if lines:
        payload["lines"] = lines
    if request_contact:
        payload["request_contact"] = True
    dispatcher.utter_message(json_message=payload)


def button(key: str, payload: str) -> dict[str, str]:
    return {"key": key, "payload": payload}


def line(key: str, **args: Any) -> dict[str, Any]:
    return {"key": key, "args": args}


def try_again(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[Any]:
    """The API failed: say so and change nothing."""
    say(dispatcher, tracker, TRY_AGAIN_KEY)
    return []


def latest_user_timestamp(tracker: Tracker) -> float:
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return float(event.get("timestamp") or 0.0)
    return 0.0


def idempotency_key(tracker: Tracker, purpose: str, *parts: object) -> str:
    """A key stable across retries of the same turn, distinct for a new request.

    It is derived from the conversation, the purpose and the timestamp of the user message the
    request answers, so Rasa re-running an action (or the borrower's chat client resending)
    creates one record while a later, separate request creates another.
    """
    material = "\x00".join(str(p) for p in (tracker.sender_id, purpose, *parts))
    return hashlib.sha256(material.encode()).hexdigest()[:40]


TIMEZONE_SLOT = "timezone"


def local_timezone(tracker: Tracker) -> str:
    """Where the chat's borrower lives: the zone the API named for this chat (the verified
    borrower's, or the proven phone's owner's), else the deployment's (Nairobi by default)."""
    named = tracker.get_slot(TIMEZONE_SLOT)
    if isinstance(named, str) and _is_zone(named):
        return named
    return os.environ.get("KOPA_TIMEZONE", "Africa/Nairobi")


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError):
        return False
    return True


def local_date(moment: datetime, tracker: Tracker) -> date:
    """The borrower's calendar day of ``moment`` (a payment at 00:30 in Nairobi is 21:30 UTC
    the day before)."""
    return moment.astimezone(ZoneInfo(local_timezone(tracker))).date()


def today(tracker: Tracker) -> date:
    """The borrower's today: "mañana" said at 22:00 in Mexico City is the next day there, even
    when it is already that day in UTC."""
    return local_date(datetime.now(UTC), tracker)
