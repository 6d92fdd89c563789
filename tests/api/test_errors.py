"""Errors are coded and never leak a stack trace or personal data."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.core.config import get_settings
from api.core.deps import get_session
from api.main import create_app


def test_an_unexpected_failure_answers_a_coded_500_without_details() -> None:
    app = create_app()

    def broken() -> Iterator[Session]:
        raise RuntimeError("connection to db failed for +254712345678")
        yield  # pragma: no cover

    app.dependency_overrides[get_session] = broken
    token = get_settings().service_token.get_secret_value()
    client = TestClient(app, raise_server_exceptions=False)
    response = client.get("/v1/identities/telegram/1", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 500
    assert response.json() == {"code": "internal_error", "detail": "Internal error"}
    assert "254712345678" not in response.text and "Traceback" not in response.text


def test_a_malformed_request_gets_a_coded_validation_error() -> None:
    token = get_settings().service_token.get_secret_value()
    client = TestClient(create_app())
    response = client.get("/v1/identities/signal/1", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
