"""Rasa's own tracker and lock stores, driven from Rasa's virtualenv (``python rasa_stores.py``).

The retention job must read and write what Rasa 3.6 writes, and take the lock Rasa takes: these
commands use Rasa's classes (``RedisTrackerStore``, ``SQLTrackerStore``, ``RedisLockStore``),
never a copy of their formats. Run by ``tests/reliability/test_api.py`` with ``.venv-rasa``.

Commands (JSON on argv[1]):
  save   {"stores", "sender", "events": [[kind, text, timestamp], ...]}
  read   {"stores", "sender"} -> prints the events as JSON (null if no tracker)
  hold   {"stores", "sender", "seconds"} -> holds the conversation lock, prints "held", then
         after ``seconds`` prints whether the tracker still had its text at release
"""

import asyncio
import json
import sys
import time

from rasa.core.lock_store import RedisLockStore
from rasa.core.tracker_store import RedisTrackerStore, SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker


def stores(spec):
    domain = Domain.empty()
    built = []
    if spec.get("redis"):
        r = spec["redis"]
        built.append(
            RedisTrackerStore(
                domain, host=r["host"], port=r["port"], db=r["db"], key_prefix=r["prefix"]
            )
        )
    if spec.get("sqlite"):
        built.append(SQLTrackerStore(domain, dialect="sqlite", db=spec["sqlite"]))
    return built


async def main(command, args):
    if command == "save":
        events = []
        for kind, text, ts in args["events"]:
            if kind == "user":
                events.append(
                    UserUttered(
                        text,
                        intent={"name": "inform", "confidence": 1.0},
                        metadata={"message_id": "tg:1:" + str(int(ts)), "proven_phone": text},
                        timestamp=ts,
                    )
                )
            else:
                events.append(BotUttered(text, data={"custom": {"key": text}}, timestamp=ts))
        for store in stores(args["stores"]):
            await store.save(DialogueStateTracker.from_events(args["sender"], events))
        print("saved")
    elif command == "read":
        result = []
        for store in stores(args["stores"]):
            tracker = await store.retrieve(args["sender"])
            result.append(None if tracker is None else [e.as_dict() for e in tracker.events])
        print(json.dumps(result))
    elif command == "hold":
        r = args["stores"]["redis"]
        lock_store = RedisLockStore(
            host=r["host"], port=r["port"], db=r["db"], key_prefix=r["prefix"]
        )
        async with lock_store.lock(args["sender"], lock_lifetime=60, wait_time_in_seconds=0.05):
            print("held", flush=True)
            await asyncio.sleep(args["seconds"])
            tracker = await stores(args["stores"])[0].retrieve(args["sender"])
            texts = [getattr(e, "text", None) for e in tracker.events] if tracker else []
            print(json.dumps({"texts_at_release": texts, "released_at": time.time()}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
