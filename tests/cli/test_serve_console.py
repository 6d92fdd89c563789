"""``kopa serve console``: the officers' console on its own port, without the loan API."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.core.migrate import upgrade
from kopa.stack import Service, free_port, start_process, wait_healthy


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Service]:
    """``kopa serve console`` on a migrated SQLite database, its port from the settings."""
    url = f"sqlite:///{tmp_path / 'console.db'}"
    upgrade(url)
    port = free_port()
    service = start_process(
        "console",
        [sys.executable, "-m", "kopa.cli", "serve", "console"],
        port,
        "/health",
        {"KOPA_DATABASE_URL": url, "KOPA_CONSOLE__PORT": str(port)},
        tmp_path,
    )
    try:
        wait_healthy(service, timeout=60)
        yield service
    finally:
        service.stop()


def test_the_console_serves_its_sign_in_page_and_not_the_loan_api(console: Service) -> None:
    with httpx.Client(base_url=console.url, headers={"Accept-Language": "fr"}) as client:
        login = client.get("/console/login")
        home = client.get("/")
        script = client.get("/console/static/dashboard.js")
        # Routes the API app answers (the webhook refuses an unsigned body, 401): not here.
        webhook = client.post("/v1/webhooks/payments", content=b"{}")
        schema = client.get("/openapi.json")

    assert login.status_code == 200
    assert 'action="/console/login"' in login.text and 'name="password"' in login.text
    assert '<html lang="fr">' in login.text
    assert login.cookies.get("__Host-kopa_login_csrf")
    assert (home.status_code, home.headers["location"]) == (303, "/console/queue")
    assert script.status_code == 200
    assert (webhook.status_code, schema.status_code) == (404, 404)
