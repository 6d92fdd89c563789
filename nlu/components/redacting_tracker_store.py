"""A tracker store that keeps no typed words and no account data in Rasa's trackers.

Rasa 3.6 stores each user event with the text the borrower typed (a whole ID number, a date
of birth, a name) and each bot event with what the bot said (a balance, a due date). Kopa's
actions need neither once their turn is over: a turn's actions run on the tracker in memory,
which still holds the text; the stored copy only feeds later turns, where the actions read
intents, slots, message keys and metadata (see ``actions.common``). So every tracker is
redacted on its way to the store it wraps (in memory, SQL, Redis: the ``wrapped_type`` below):

- a user event keeps its intent, entity names, ranking, metadata and the length of its text;
  the text and the values of its entities go;
- a bot event keeps its message key, locale and buttons; its text, arguments and lines go.

What it cannot redact: slots the dialogue needs on the next turn (the hardship reason until
the case is opened, the words of a request carried through the check). Those are cleared when
used, and ``kopa retention run`` deletes whole trackers past their age.

endpoints.yml::

    tracker_store:
      type: components.redacting_tracker_store.RedactingTrackerStore
      wrapped_type: sql      # optional: the store to wrap, with its own keys below
                             # (not ``store_type``: Rasa reads that as ``type``)
      url: 127.0.0.1
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import TrackerStore, create_tracker_store
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

REDACTED = "[redacted]"
# What a bot event's custom payload may keep: which message it was, never what it said.
BOT_KEEPS = ("key", "locale", "buttons", "request_contact")


def redact_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event as it may be stored: without typed words or rendered account data."""
    kind = event.get("event")
    if kind == "user":
        return _redact_user(event)
    if kind == "bot":
        return _redact_bot(event)
    return event


def _redact_user(event: dict[str, Any]) -> dict[str, Any]:
    parse_data = dict(event.get("parse_data") or {})
    text = event.get("text")
    if isinstance(text, str):
        # How much was read, never what: enough to see a message arrive whole or cut.
        parse_data["redacted_chars"] = len(text)
    if "text" in parse_data:
        parse_data["text"] = None
    parse_data["entities"] = [
        {**entity, "value": REDACTED} | ({"text": REDACTED} if "text" in entity else {})
        for entity in parse_data.get("entities") or []
    ]
    return {**event, "text": None, "parse_data": parse_data}


def _redact_bot(event: dict[str, Any]) -> dict[str, Any]:
    data = dict(event.get("data") or {})
    custom = data.get("custom")
    if isinstance(custom, dict):
        data["custom"] = {name: custom[name] for name in BOT_KEEPS if name in custom}
    return {**event, "text": None, "data": data}


def redacted(tracker: DialogueStateTracker, domain: Domain) -> DialogueStateTracker:
    """A copy of ``tracker`` with every event redacted (same events, same order and count)."""
    return DialogueStateTracker.from_dict(
        tracker.sender_id,
        [redact_event(event.as_dict()) for event in tracker.events],
        domain.slots,
        tracker._max_event_history,
    )


class RedactingTrackerStore(TrackerStore):
    """Wraps the tracker store named by ``wrapped_type`` (in memory when none) and redacts every
    tracker it saves; reading is the wrapped store's."""

    def __init__(
        self,
        domain: Domain | None = None,
        host: str | None = None,
        event_broker: EventBroker | None = None,
        wrapped_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        inner_config = (
            EndpointConfig(url=host, type=wrapped_type, **kwargs) if wrapped_type else None
        )
        self._store = create_tracker_store(inner_config, domain, event_broker)
        super().__init__(domain, event_broker)

    @property
    def domain(self) -> Domain:
        return self._store.domain

    @domain.setter
    def domain(self, domain: Domain | None) -> None:
        self._store.domain = domain or Domain.empty()

    # Rasa sets the history bound on the store it holds before retrieving: the wrapped store
    # is the one that builds the tracker.
    @property  # type: ignore[override]
    def max_event_history(self) -> int | None:
        return self._store.max_event_history

    @max_event_history.setter
    def max_event_history(self, value: int | None) -> None:
        self._store.max_event_history = value

    async def save(self, tracker: DialogueStateTracker) -> None:
        await self._store.save(redacted(tracker, self.domain))

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        return await self._store.retrieve(sender_id)

    async def retrieve_full_tracker(self, conversation_id: str) -> DialogueStateTracker | None:
        return await self._store.retrieve_full_tracker(conversation_id)

    async def keys(self) -> Iterable[str]:
        return await self._store.keys()

    async def exists(self, conversation_id: str) -> bool:
        return await self._store.exists(conversation_id)
