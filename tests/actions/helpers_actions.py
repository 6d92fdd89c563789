"""A fake loan API (httpx MockTransport) and hand-built trackers for unit tests of the actions."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import loan_api

Route = Callable[[httpx.Request, re.Match[str]], httpx.Response]


@dataclass
class FakeLoanApi:
    """Answers by (method, path regex); records every request; unknown routes are 500s."""

    routes: list[tuple[str, re.Pattern[str], Route]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, method: str, path: str, answer: Route | tuple[int, Any]) -> None:
        if isinstance(answer, tuple):
            status, body = answer

            def route(_request: httpx.Request, _match: re.Match[str]) -> httpx.Response:
                return httpx.Response(status, json=body)

            self.routes.insert(0, (method, re.compile(path + "$"), route))
        else:
            self.routes.insert(0, (method, re.compile(path + "$"), answer))

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for method, pattern, route in self.routes:
            match = pattern.match(request.url.path)
            if method == request.method and match:
                return route(request, match)
        return httpx.Response(500, json={"code": "internal_error", "detail": "no route"})

    def bodies(self, method: str, path: str) -> list[Any]:
        return [
            json.loads(r.content or b"null")
            for r in self.requests
            if r.method == method and re.match(path + "$", r.url.path)
        ]


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLoanApi]:
    fake = FakeLoanApi()
    monkeypatch.setattr(loan_api, "default_transport", httpx.MockTransport(fake.handle))
    monkeypatch.setenv("KOPA_API_URL", "http://loan-api.test")
    monkeypatch.setenv("KOPA_SERVICE_TOKEN", "unit-test-token")
    yield fake


def make_tracker(
    *,
    sender: str = "tg:4242",
    text: str = "hello",
    intent: str = "greet",
    slots: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    entities: list[dict[str, Any]] | None = None,
    active_loop: str | None = None,
    events: list[dict[str, Any]] | None = None,
) -> Tracker:
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "entities": entities or [],
        "metadata": metadata or {},
    }
    user_event = {"event": "user", "timestamp": 1764400000.5, "text": text, "parse_data": latest}
    return Tracker(
        sender_id=sender,
        slots={"language": "en", **(slots or {})},
        latest_message=latest,
        events=[*(events or []), user_event],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def payloads(dispatcher: CollectingDispatcher) -> list[dict[str, Any]]:
    return [message["custom"] for message in dispatcher.messages]


def keys(dispatcher: CollectingDispatcher) -> list[str]:
    return [payload["key"] for payload in payloads(dispatcher)]
