"""An API client on the test session, with a clock the test moves by hand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.core.config import get_settings
from api.core.deps import get_now, get_session
from api.core.security import hmac_sha256_hex, payment_signature_headers
from api.main import create_app
from tests.api.factories import aware


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: aware(2026, 12, 1, 7, 0))

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Api:
    client: TestClient
    clock: Clock
    token: str

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params or None, headers=self._headers(None))

    def post(
        self, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return self.client.post(path, json=body, headers=self._headers(headers))

    def put(self, path: str, body: Any) -> httpx.Response:
        return self.client.put(path, json=body, headers=self._headers(None))

    def webhook(self, body: dict[str, Any], *, signature: str | None = "valid") -> httpx.Response:
        raw = json.dumps(body).encode()
        headers = self._headers({"Content-Type": "application/json"})
        secret = get_settings().payment_webhook_secret.get_secret_value()
        if signature == "valid":
            timestamp = int(self.clock.now.timestamp())
            headers.update(payment_signature_headers(secret, raw, timestamp=timestamp))
        elif signature == "body-only":  # the old scheme: the body signed, no time
            headers["X-Kopa-Signature"] = f"sha256={hmac_sha256_hex(secret, raw)}"
        elif signature is not None:
            headers["X-Kopa-Signature"] = signature
        return self.client.post("/v1/webhooks/payments", content=raw, headers=headers)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def app_on(session: Session, clock: Clock) -> FastAPI:
    """The API app on the test's session and clock."""
    app = create_app()

    def _session() -> Iterator[Session]:
        # A real request sees only committed rows; committing what the test built also keeps it
        # when a failing request rolls back. The fixture's outer transaction still undoes all.
        session.commit()
        try:
            yield session
        except BaseException:
            session.rollback()
            raise

    app.dependency_overrides[get_session] = _session
    app.dependency_overrides[get_now] = lambda: clock.now
    return app


@pytest.fixture
def api(session: Session, clock: Clock) -> Iterator[Api]:
    with TestClient(app_on(session, clock), raise_server_exceptions=False) as client:
        yield Api(client, clock, get_settings().service_token.get_secret_value())


@pytest.fixture
def web(session: Session, clock: Clock) -> Iterator[TestClient]:
    """A client that keeps cookies over HTTPS, as a browser on the console does (its cookies
    are Secure, so a plain-HTTP client would never send them back)."""
    app = app_on(session, clock)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        yield client
