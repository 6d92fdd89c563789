"""The console in a real Chromium: Debian's ``chromium`` driven by Playwright, against the API
app served by uvicorn on a free port, on a migrated database of these tests' own.

One browser and one server per database for all of them; each test gets a fresh browser
context (no cookies), so tests do not see each other's sessions. The server's clock is fixed,
as the API tests' is, so the seeded cases' deadlines and the dashboard's months do not drift
with the day the tests run. Without Chromium or Playwright the tests skip (fail with
``KOPA_REQUIRE_SERVICES=1``): ``make test`` installs Chromium (``$(STAMPS)/chromium``).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.borrowers.models import Borrower
from api.branches.models import StaffRole
from api.cases.models import Case
from api.core.db import build_engine
from api.core.deps import get_now, get_session
from api.core.migrate import upgrade
from api.main import create_app
from tests.api.conftest import Clock
from tests.api.console_pages import PASSWORD, Portfolio, build_portfolio, make_staff
from tests.api.kpi_contacts import add_cases, add_messages
from tests.api.kpi_portfolio import build as build_kpi_portfolio
from tests.services import scratch_postgres, service_unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

CHROMIUM = Path("/usr/bin/chromium")
# The machine's network is closed: nothing that phones home, and a profile of its own
# (Playwright's launch() gives each browser a fresh user-data-dir).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
KPI_MANAGER = "kpi.manager@mfi.example"


@dataclass
class World:
    """What the browser tests find: the console tests' portfolio (its officer's hardship case
    ``a_new`` belongs to a Swahili speaker) and the KPI tests' portfolio with a manager."""

    portfolio: Portfolio
    hardship: Case
    clock: Clock


@dataclass
class Console:
    url: str
    database: str  # sqlite | postgres
    engine: Engine
    world: World

    def sign_in(self, page: Page, email: str, password: str = PASSWORD) -> None:
        page.goto("/console/login")
        page.get_by_label("Work email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()

    def shot(self, page: Page, name: str) -> None:
        """Keep a screenshot of the page as a test artefact."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"{self.database}-{name}.png", full_page=True)


# Package-scoped: one browser and one server per database for all the browser tests, gone
# before the rest of the suite runs.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        service_unavailable(f"{CHROMIUM} is missing (make chromium): browser tests skipped")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_unavailable("Playwright is not installed: browser tests skipped")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        yield chromium
        chromium.close()


def _seed(engine: Engine) -> World:
    with Session(engine, expire_on_commit=False) as session:
        kpis = build_kpi_portfolio(session)
        # Messages, replies and case deadlines: the contact and deadline charts have figures.
        add_messages(session, kpis)
        add_cases(session, kpis)
        make_staff(session, [kpis.a], role=StaffRole.manager, email=KPI_MANAGER)
        clock = Clock()
        portfolio = build_portfolio(session, clock)
        hardship = portfolio.cases["a_new"]
        session.get_one(Borrower, hardship.borrower_id).preferred_language = "sw"
        session.commit()
    return World(portfolio, hardship, clock)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _serving(engine: Engine, clock: Clock) -> Iterator[str]:
    """The API app on ``engine`` and ``clock``, served by uvicorn in a thread of this process."""
    app = create_app()
    sessions = sessionmaker(bind=engine, expire_on_commit=False)

    def _session() -> Iterator[Session]:
        with sessions() as session:
            yield session

    app.dependency_overrides[get_session] = _session
    app.dependency_overrides[get_now] = lambda: clock.now
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="console-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the console's server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def _database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'console.db'}"
        upgrade(url)
        yield url
    else:
        with scratch_postgres("kopa_browser") as url:
            yield url


@pytest.fixture(
    scope="package", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def console(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    kind = str(request.param)
    with _database(kind, tmp_path_factory.mktemp("browser")) as url:
        engine = build_engine(url)
        world = _seed(engine)
        with _serving(engine, world.clock) as base:
            yield Console(base, kind, engine, world)
        engine.dispose()


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    """A fresh browser context (no cookies) reading English, and its page's script errors."""
    context = browser.new_context(base_url=console.url, locale="en-US")
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("console", lambda message: _keep_refusal(errors, message))
    yield opened
    context.close()
    assert errors == [], errors  # a script that failed or that the CSP refused is a bug


def _keep_refusal(errors: list[str], message: ConsoleMessage) -> None:
    # Not every logged error: a refused sign-in's 401 is logged too, and is the page working.
    if message.type == "error" and "Content Security Policy" in message.text:
        errors.append(message.text)
