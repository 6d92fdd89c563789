"""Retention of Rasa's conversations: what ``kopa retention run`` does to the tracker stores.

Rasa keeps every event of a conversation (the words typed, the metadata, what the bot said) in
its tracker store. Past ``tracker_days`` a conversation nobody wrote in is deleted; in one still
going on, the user and bot events older than that lose their text, parse data and metadata (the
intent and action names stay, so the dialogue state is unchanged).

Both stores Rasa 3.6 offers here are handled: its SQL store (table ``events``: SQLite for the
native stack, PostgreSQL) and its Redis store (production, ``tracker:<sender id>`` holding the
serialised dialogue). While a conversation is changed the job holds Rasa's own ticket lock on
it in the Redis lock store, so Rasa never answers from a tracker half rewritten and never
writes back one the job has just cleaned; a conversation Rasa holds longer than
``lock_wait_seconds`` is left to the next run.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import MetaData, Table, delete, func, inspect, select, update
from sqlalchemy.engine import Engine

# Fields of an event that may carry what a person wrote or was told.
USER_TEXT_FIELDS = ("text", "metadata", "message_id")
BOT_TEXT_FIELDS = ("text", "data", "metadata")
TRACKER_TABLE = "events"
# Rasa's ticket lock lifetime (``rasa.core.lock_store.DEFAULT_LOCK_LIFETIME``).
LOCK_LIFETIME_SECONDS = 60.0


@dataclass
class TrackerPurge:
    conversations_deleted: int = 0
    events_anonymised: int = 0
    conversations_skipped: int = 0


def anonymise_event(event: dict[str, Any]) -> bool:
    """Strip what a person wrote or read from one event, in place; True when it changed."""
    kind = event.get("event")
    changed = False
    if kind == "user":
        for name in USER_TEXT_FIELDS:
            if event.get(name):
                event[name] = None if name != "metadata" else {}
                changed = True
        parse = event.get("parse_data")
        if isinstance(parse, dict) and (parse.get("text") or parse.get("entities")):
            intent = parse.get("intent") or {}
            event["parse_data"] = {"intent": intent, "entities": [], "text": None}
            changed = True
    elif kind == "bot":
        for name in BOT_TEXT_FIELDS:
            if event.get(name):
                event[name] = None if name == "text" else {}
                changed = True
    elif kind == "slot" and event.get("value") not in (None, ""):
        # Old slot values may be words the borrower typed; the latest value of each slot is
        # kept by the caller (it is part of the conversation's state).
        event["value"] = None
        changed = True
    return changed


def anonymise_events(events: list[dict[str, Any]], cutoff: float) -> int:
    """Anonymise the events older than ``cutoff`` (epoch seconds); returns how many changed.

    A slot's latest setting is state Rasa still acts on: it is kept even when old.
    """
    latest_slot: dict[str, int] = {}
    for index, event in enumerate(events):
        if event.get("event") == "slot":
            latest_slot[str(event.get("name"))] = index
    changed = 0
    for index, event in enumerate(events):
        if float(event.get("timestamp") or 0.0) >= cutoff:
            continue
        if event.get("event") == "slot" and latest_slot.get(str(event.get("name"))) == index:
            continue
        changed += anonymise_event(event)
    return changed


class ConversationLocks:
    """Rasa's ticket locks in its Redis lock store, taken the way Rasa takes them.

    A lock is ``lock:<conversation id>`` holding ``{"conversation_id", "tickets": [json]}``;
    the first unexpired ticket is served. Tickets are issued and returned in a Redis
    transaction (WATCH), so a ticket Rasa issues at the same moment is never lost.
    """

    def __init__(self, client: redis.Redis, *, key_prefix: str, wait_seconds: float) -> None:
        self._redis = client
        self._prefix = key_prefix
        self._wait = wait_seconds

    def _update(self, key: str, change: Any) -> Any:
        with self._redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    raw = pipe.get(key)
                    lock = json.loads(raw) if raw else {"tickets": []}
                    tickets = [json.loads(t) for t in lock.get("tickets", [])]
                    now = time.time()
                    tickets = [t for t in tickets if float(t["expires"]) > now]
                    result, tickets = change(tickets)
                    pipe.multi()
                    if tickets:
                        lock["tickets"] = [json.dumps(t) for t in tickets]
                        lock["conversation_id"] = key[len(self._prefix) :]
                        pipe.set(key, json.dumps(lock))
                    else:
                        pipe.delete(key)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue

    def _serving(self, key: str) -> int | None:
        raw = self._redis.get(key)
        if not raw:
            return None
        now = time.time()
        for ticket in json.loads(raw).get("tickets", []):
            parsed = json.loads(ticket)
            if float(parsed["expires"]) > now:
                return int(parsed["number"])
        return None

    @contextlib.contextmanager
    def hold(self, conversation_id: str) -> Iterator[bool]:
        """Yield True once this job is served (False after the wait: leave it for now)."""
        key = self._prefix + conversation_id

        def issue(tickets: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
            number = (int(tickets[-1]["number"]) if tickets else -1) + 1
            expires = time.time() + LOCK_LIFETIME_SECONDS
            return number, [*tickets, {"number": number, "expires": expires}]

        mine = int(self._update(key, issue))
        try:
            deadline = time.monotonic() + self._wait
            while self._serving(key) != mine and time.monotonic() < deadline:
                time.sleep(0.05)
            yield self._serving(key) == mine
        finally:
            self._update(key, lambda ts: (None, [t for t in ts if int(t["number"]) != mine]))


class NoLocks:
    """No shared lock store (the native stack's Rasa keeps its locks in its own memory)."""

    @contextlib.contextmanager
    def hold(self, conversation_id: str) -> Iterator[bool]:
        yield True


Locks = ConversationLocks | NoLocks


def purge_redis_trackers(
    client: redis.Redis, *, key_prefix: str, cutoff: float, locks: Locks
) -> TrackerPurge:
    """Delete idle conversations and anonymise old events in Rasa's Redis tracker store."""
    result = TrackerPurge()
    for raw_key in client.scan_iter(match=f"{key_prefix}*", count=500):
        key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
        with locks.hold(key[len(key_prefix) :]) as held:
            if not held:
                result.conversations_skipped += 1
                continue
            raw = client.get(key)
            if raw is None:
                continue
            dialogue = json.loads(raw)
            events: list[dict[str, Any]] = dialogue.get("events") or []
            last = max((float(e.get("timestamp") or 0.0) for e in events), default=0.0)
            if last < cutoff:
                client.delete(key)
                result.conversations_deleted += 1
                continue
            changed = anonymise_events(events, cutoff)
            if changed:
                client.set(key, json.dumps(dialogue), keepttl=True)
                result.events_anonymised += changed
    return result


def purge_sql_trackers(engine: Engine, *, cutoff: float, locks: Locks) -> TrackerPurge:
    """The same for Rasa's SQL tracker store (table ``events``; nothing to do without it)."""
    result = TrackerPurge()
    with engine.connect() as connection:
        if not inspect(connection).has_table(TRACKER_TABLE):
            return result
        events = Table(TRACKER_TABLE, MetaData(), autoload_with=connection)
        senders = list(connection.scalars(select(events.c.sender_id).distinct()))
    for sender in senders:
        with locks.hold(sender) as held:
            if not held:
                result.conversations_skipped += 1
                continue
            with engine.begin() as connection:
                mine = events.c.sender_id == sender
                last = connection.scalar(select(func.max(events.c.timestamp)).where(mine))
                if last is None or float(last) < cutoff:
                    connection.execute(delete(events).where(mine))
                    result.conversations_deleted += 1
                    continue
                rows = connection.execute(
                    select(events.c.id, events.c.data).where(mine).order_by(events.c.id)
                ).all()
                parsed = [json.loads(row.data or "{}") for row in rows]
                before = [json.dumps(event, sort_keys=True) for event in parsed]
                result.events_anonymised += anonymise_events(parsed, cutoff)
                for row, event, old in zip(rows, parsed, before, strict=True):
                    if json.dumps(event, sort_keys=True) != old:
                        connection.execute(
                            update(events)
                            .where(events.c.id == row.id)
                            .values(data=json.dumps(event))
                        )
    return result
