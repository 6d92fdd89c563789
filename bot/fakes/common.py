"""What both fake providers share: the request log, fault injection and a global rate limit.

Control endpoints (same on both fakes):

- ``GET /_fake/sent`` lists every recorded request (``?method=sendMessage`` or ``?recipient=`` to
  filter); ``DELETE /_fake/sent`` clears the log.
- ``POST /_fake/faults`` adds a fault ``{"kind", "recipient"?, "times"?, "retry_after"?,
  "status"?, "delay"?, "after"?}``; ``DELETE /_fake/faults`` removes them all.
- ``PUT /_fake/rate_limit`` ``{"per_second": 1000}`` answers 429 beyond that many messages per
  second across all recipients (``null`` turns it off).
- ``POST /_fake/deliver`` sends an inbound update to the gateway (provider-specific body).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from pydantic import BaseModel


class FaultSpec(BaseModel):
    """One injected fault; ``recipient`` ``None`` means every recipient."""

    kind: str
    recipient: str | None = None
    times: int | None = None  # None: until cleared
    retry_after: int = 3
    status: int = 502
    delay: float = 15.0  # timeout faults: how long to hold the answer
    after: int = 0  # let this many matching requests through first (the 2nd part of a text)


class RateLimitSpec(BaseModel):
    per_second: float | None


@dataclass
class Fault:
    spec: FaultSpec
    used: int = 0
    passed: int = 0  # matching requests let through (``spec.after``)


@dataclass
class FakeState:
    """Mutable state of one fake server; tests running it in-process may read it directly."""

    fault_kinds: frozenset[str]
    sent: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    rate_limit_per_second: float | None = None
    _window: deque[float] = field(default_factory=deque)
    _seq: int = 0
    # Called with each recorded request, in the server's thread (benchmarks time replies).
    listeners: list[Callable[[dict[str, Any]], None]] = field(default_factory=list)

    def record(self, method: str, recipient: str | None, payload: dict[str, Any]) -> dict[str, Any]:
        self._seq += 1
        entry: dict[str, Any] = {
            "seq": self._seq,
            "at": time.time(),
            "method": method,
            "recipient": recipient,
            "payload": payload,
            "outcome": "pending",
        }
        self.sent.append(entry)
        for listener in self.listeners:
            listener(entry)
        return entry

    def take_fault(self, recipient: str | None) -> FaultSpec | None:
        """The first matching fault, counting its use; exhausted faults are dropped."""
        for fault in list(self.faults):
            if fault.spec.recipient is not None and fault.spec.recipient != recipient:
                continue
            if fault.passed < fault.spec.after:
                fault.passed += 1
                continue
            fault.used += 1
            if fault.spec.times is not None and fault.used >= fault.spec.times:
                self.faults.remove(fault)
            return fault.spec
        return None

    def over_rate_limit(self) -> bool:
        """Count this message against the global limit; True when it must be refused."""
        if self.rate_limit_per_second is None:
            return False
        now = time.monotonic()
        while self._window and now - self._window[0] >= 1.0:
            self._window.popleft()
        if len(self._window) >= self.rate_limit_per_second:
            return True
        self._window.append(now)
        return False

    def query(self, method: str | None, recipient: str | None) -> list[dict[str, Any]]:
        return [
            entry
            for entry in self.sent
            if (method is None or entry["method"] == method)
            and (recipient is None or entry["recipient"] == recipient)
        ]


def control_router(state: FakeState) -> APIRouter:
    router = APIRouter(prefix="/_fake")

    @router.get("/sent")
    async def list_sent(method: str | None = None, recipient: str | None = None) -> Any:
        return state.query(method, recipient)

    @router.delete("/sent")
    async def clear_sent() -> dict[str, bool]:
        state.sent.clear()
        return {"ok": True}

    @router.post("/faults")
    async def add_fault(spec: FaultSpec) -> Any:
        if spec.kind not in state.fault_kinds:
            return {"ok": False, "error": f"unknown kind; one of {sorted(state.fault_kinds)}"}
        state.faults.append(Fault(spec))
        return {"ok": True}

    @router.delete("/faults")
    async def clear_faults() -> dict[str, bool]:
        state.faults.clear()
        return {"ok": True}

    @router.put("/rate_limit")
    async def set_rate_limit(spec: RateLimitSpec) -> dict[str, Any]:
        state.rate_limit_per_second = spec.per_second
        state._window.clear()
        return {"ok": True, "per_second": spec.per_second}

    return router


def parse_params(query: bytes, content_type: str, body: bytes) -> dict[str, Any] | None:
    """Bot API parameters from the query string and a JSON or plain form body; ``None`` for a
    multipart form, which needs :func:`request_params`."""
    params: dict[str, Any] = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    if "application/json" in content_type:
        decoded = json.loads(body) if body else None
        if isinstance(decoded, dict):
            params.update(decoded)
    elif "application/x-www-form-urlencoded" in content_type:
        # The standard library decodes a plain form several times faster than the multipart
        # parser; the benchmarks run this fake at 1000 requests/s beside the workers.
        params.update(parse_qsl(body.decode(), keep_blank_values=True))
    elif "form" in content_type:
        return None
    return params


async def request_params(request: Request) -> dict[str, Any]:
    """Bot API parameters from the query string, a JSON body or a form body (PTB sends forms)."""
    content_type = request.headers.get("content-type", "")
    params = parse_params(request.scope["query_string"], content_type, await request.body())
    if params is None:
        form = await request.form()
        params = dict(request.query_params)
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    return params
