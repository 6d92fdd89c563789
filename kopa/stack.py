"""Start and stop the running product: loan API, action server and Rasa server.

Each service is a subprocess bound to 127.0.0.1 on a free port chosen at start, with its logs
in a file (never a pipe that could fill up) and a health wait. Rasa's HTTP API needs its auth
token (``--auth-token``, ``KOPA_RASA_TOKEN``) and the action server the shared secret Rasa sends
in a header (``KOPA_ACTION_SERVER_TOKEN``, ``actions/server.py``); both come from the
environment, development placeholders otherwise, and travel to Rasa through its environment.
Tests, ``kopa chat --start``, the demo and the benchmarks share this one way of starting
things. Rasa's telemetry is switched off: nothing here talks to anything but localhost.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from kopa.paths import NLU_DIR, RASA_BIN, ROOT, VAR_DIR

HOST = "127.0.0.1"
DEV_RASA_TOKEN = "dev-rasa-token"  # noqa: S105 - a development placeholder
DEV_ACTION_SERVER_TOKEN = "dev-action-server-token"  # noqa: S105 - as actions/server.py
ACTION_TOKEN_HEADER = "X-Kopa-Action-Token"  # noqa: S105 - a header name


class StackError(RuntimeError):
    """A service did not start; the message names it and its log file."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    name: str
    url: str
    health_path: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        # Each service runs in its own process group, so its workers stop with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)


@dataclass
class Stack:
    """The running services; a gateway takes ``rasa_urls`` (``KOPA_RASA_URL``, commas)."""

    api_url: str | None = None
    actions_url: str | None = None
    rasa_url: str | None = None  # the first replica: any one serves Rasa's HTTP API
    rasa_urls: list[str] = field(default_factory=list)  # every replica, for the gateways
    # Rasa's HTTP API (/conversations/..., /model/...) answers only with ``?token=``.
    rasa_token: str = DEV_RASA_TOKEN
    services: list[Service] = field(default_factory=list)

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()


def _base_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "RASA_TELEMETRY_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
            "SANIC_HOST": HOST,
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
    )
    env.update(extra)
    return env


def start_process(
    name: str,
    command: list[str],
    port: int | None,
    health_path: str | None,
    extra_env: dict[str, str],
    log_dir: Path,
) -> Service:
    """Start one more part of the stack (a gateway, a notifier worker) the way the others are:
    its own process group, its log in ``log_dir``, telemetry off."""
    return _spawn(name, command, port, health_path, _base_env(extra_env), log_dir)


def _spawn(
    name: str,
    command: list[str],
    port: int | None,
    health_path: str | None,
    env: dict[str, str],
    log_dir: Path,
) -> Service:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed commands from this repository
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://{HOST}:{port}" if port is not None else ""
    return Service(name, url, health_path or "", process, log_path)


def wait_healthy(service: Service, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if not service.alive():
                raise StackError(f"{service.name} exited; see {service.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(service.url + service.health_path).status_code == 200:
                    return
            time.sleep(0.3)
    raise StackError(f"{service.name} not healthy after {timeout:.0f} s; see {service.log_path}")


def start_gateway(name: str, env: dict[str, str], log_dir: Path, timeout: float = 60.0) -> Service:
    """One ``kopa serve bot`` process on a free port with ``env`` (``KOPA_*`` settings), once it
    answers ``/health``; stopped again when it does not."""
    port = free_port()
    gateway = start_process(
        name,
        [sys.executable, "-m", "kopa.cli", "serve", "bot"],
        port,
        "/health",
        {**env, "KOPA_GATEWAY_PORT": str(port)},
        log_dir,
    )
    try:
        wait_healthy(gateway, timeout)
    except StackError:
        gateway.stop()
        raise
    return gateway


def start_api(
    database_url: str,
    token: str,
    log_dir: Path,
    extra_env: dict[str, str],
    port: int | None = None,
    workers: int = 1,
) -> Service:
    """Start the loan API (``port``: reuse one, e.g. to bring the API back after an outage)."""
    port = port or free_port()
    env = _base_env({"KOPA_DATABASE_URL": database_url, "KOPA_SERVICE_TOKEN": token, **extra_env})
    command = [
        sys.executable, "-m", "uvicorn", "api.main:app",
        "--host", HOST, "--port", str(port), "--log-level", "warning", "--no-access-log",
        "--workers", str(workers),
    ]  # fmt: skip
    return _spawn("api", command, port, "/health", env, log_dir)


def action_server_token() -> str:
    return os.environ.get("KOPA_ACTION_SERVER_TOKEN") or DEV_ACTION_SERVER_TOKEN


def rasa_token() -> str:
    return os.environ.get("KOPA_RASA_TOKEN") or DEV_RASA_TOKEN


def start_actions(api_url: str, token: str, log_dir: Path, extra_env: dict[str, str]) -> Service:
    port = free_port()
    env = _base_env(
        {
            "KOPA_API_URL": api_url,
            "KOPA_SERVICE_TOKEN": token,
            "KOPA_ACTION_SERVER_TOKEN": action_server_token(),
            **extra_env,
        }
    )
    command = [sys.executable, "-m", "actions.server", "--port", str(port)]
    return _spawn("actions", command, port, "/health", env, log_dir)


REDACTING_TRACKER_STORE = "components.redacting_tracker_store.RedactingTrackerStore"


@dataclass(frozen=True)
class RasaStores:
    """Where Rasa keeps conversations and their locks.

    ``tracker_database_url``: a PostgreSQL database for the SQL tracker store (None: each
    replica's memory, fine for one). ``lock_redis_url``: Redis for the lock store (None: each
    replica's memory). Several replicas need both, so that a conversation can move.
    """

    tracker_database_url: str | None = None
    lock_redis_url: str | None = None
    lock_key_prefix: str = "kopa"

    @property
    def shared(self) -> bool:
        return self.tracker_database_url is not None and self.lock_redis_url is not None


def rasa_tracker_database_url(database_url: str) -> str | None:
    """The Rasa trackers' own database beside a PostgreSQL app database (``<name>_rasa``)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if not url.drivername.startswith("postgresql"):
        return None
    return url.set(database=f"{url.database}_rasa").render_as_string(hide_password=False)


def rasa_stores_from_environment(database_url: str) -> RasaStores:
    """Shared Rasa stores when the app runs on PostgreSQL and ``KOPA_REDIS_URL`` is set (the
    trackers in ``<db>_rasa``, the locks in that Redis); each replica's memory otherwise."""
    redis_url = os.environ.get("KOPA_REDIS_URL")
    tracker_url = rasa_tracker_database_url(database_url)
    if not redis_url or not tracker_url:
        return RasaStores()
    return RasaStores(tracker_database_url=tracker_url, lock_redis_url=redis_url)


def rasa_replicas_from_environment() -> int:
    """``KOPA_RASA_REPLICAS`` (1 by default)."""
    return max(1, int(os.environ.get("KOPA_RASA_REPLICAS", "1")))


def prepare_tracker_database(url: str) -> None:
    """Create the trackers' database once, before any replica starts (replicas racing to
    create it, or its tables, would fail)."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from api.core.db import build_engine

    target = make_url(url)
    admin = build_engine(
        target.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    try:
        with admin.connect() as conn:
            exists = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            )
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        admin.dispose()


def rasa_endpoints(actions_url: str, stores: RasaStores) -> tuple[str, dict[str, str]]:
    """endpoints.yml for a replica, and the environment it needs: secrets stay there, and Rasa
    expands ``${...}`` when it reads the file (only in an unquoted YAML value)."""
    from sqlalchemy.engine import make_url

    env: dict[str, str] = {}
    lines = [
        "action_endpoint:",
        f'  url: "{actions_url}/webhook"',
        "  headers:",
        f"    {ACTION_TOKEN_HEADER}: ${{KOPA_ACTION_SERVER_TOKEN}}",
        # No typed words or account data in stored trackers (nlu/components/...).
        "tracker_store:",
        f"  type: {REDACTING_TRACKER_STORE}",
    ]
    if stores.tracker_database_url:
        db = make_url(stores.tracker_database_url)
        lines += [
            "  wrapped_type: sql",
            "  dialect: postgresql",
            f"  url: {db.host or HOST}",
            f"  port: {db.port or 5432}",
            f"  db: {db.database}",
            f"  username: {db.username or 'postgres'}",
        ]
        if db.password:
            env["KOPA_RASA_TRACKER_PASSWORD"] = str(db.password)
            lines.append("  password: ${KOPA_RASA_TRACKER_PASSWORD}")
    if stores.lock_redis_url:
        redis = make_url(stores.lock_redis_url.replace("redis://", "postgresql://", 1))
        lines += [
            "lock_store:",
            "  type: redis",
            f"  url: {redis.host or HOST}",
            f"  port: {redis.port or 6379}",
            f"  db: {redis.database or 0}",
            f"  key_prefix: {stores.lock_key_prefix}",
        ]
        if redis.password:
            env["KOPA_RASA_LOCK_PASSWORD"] = str(redis.password)
            lines.append("  password: ${KOPA_RASA_LOCK_PASSWORD}")
    return "\n".join(lines) + "\n", env


def start_rasa(
    model: Path,
    actions_url: str,
    log_dir: Path,
    *,
    stores: RasaStores | None = None,
    name: str = "rasa",
) -> Service:
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    endpoints = log_dir / f"endpoints-{name}.yml"
    content, store_env = rasa_endpoints(actions_url, stores or RasaStores())
    endpoints.write_text(content)
    command = [
        str(RASA_BIN), "run",
        "--model", str(model),
        "--endpoints", str(endpoints),
        "--credentials", str(NLU_DIR / "credentials.yml"),
        "--interface", HOST,
        "--port", str(port),
        "--enable-api",
        "--auth-token", rasa_token(),
    ]  # fmt: skip
    # The model names Kopa's own NLU components as `components.<module>`: nlu/ must be importable
    # (`rasa train` runs in nlu/, which Rasa puts on the path itself).
    env = _base_env(
        {
            "KOPA_ACTION_SERVER_TOKEN": action_server_token(),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(NLU_DIR), os.environ.get("PYTHONPATH")])
            ),
            **store_env,
        }
    )
    return _spawn(name, command, port, "/webhooks/rest/", env, log_dir)


@contextlib.contextmanager
def running_stack(
    database_url: str | None = None,
    *,
    api_url: str | None = None,
    token: str | None = None,
    model: Path | None = None,
    log_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
    rasa_timeout: float = 420.0,
    rasa_replicas: int = 1,
    rasa_stores: RasaStores | None = None,
    api_workers: int = 1,
) -> Iterator[Stack]:
    """Run the loan API (unless ``api_url`` names one), the action server and Rasa.

    Args:
        database_url: the loan API's database (migrated and seeded by the caller).
        api_url: use this running loan API instead of starting one.
        token: the service token shared by the API and the actions (else KOPA_SERVICE_TOKEN).
        model: the Rasa model (else ``KOPA_RASA_MODEL``, else :func:`kopa.train.ensure_model`,
            which trains when the training inputs changed).
        log_dir: where each service writes ``<name>.log`` (else ``var/stack``).
        extra_env: more environment for the API and the action server (e.g. policy settings).
        rasa_timeout: how long Rasa may take to load its model.
        rasa_replicas: how many Rasa servers load the model; more than one needs shared
            ``rasa_stores`` (a conversation may move between them).
        rasa_stores: where Rasa keeps trackers and locks (else each replica's memory).
        api_workers: uvicorn worker processes of the loan API.

    Yields:
        The :class:`Stack`; every service is stopped on exit, also after an error.
    """
    from kopa.train import ensure_model

    token = token or os.environ.get("KOPA_SERVICE_TOKEN") or "dev-service-token"
    log_dir = log_dir or VAR_DIR / "stack"
    extra = extra_env or {}
    stack = Stack(rasa_token=rasa_token())
    try:
        pinned = os.environ.get("KOPA_RASA_MODEL")
        model = model or (Path(pinned) if pinned else ensure_model())
        if api_url is None:
            if database_url is None:
                raise StackError("give a database URL or the URL of a running loan API")
            api = start_api(database_url, token, log_dir, extra, workers=api_workers)
            stack.services.append(api)
            api_url = api.url
        stack.api_url = api_url
        actions = start_actions(api_url, token, log_dir, extra)
        stack.services.append(actions)
        stack.actions_url = actions.url
        stores = rasa_stores or RasaStores()
        if rasa_replicas > 1 and not stores.shared:
            raise StackError("several Rasa replicas need a shared tracker store and lock store")
        if stores.tracker_database_url:
            prepare_tracker_database(stores.tracker_database_url)
        for service in stack.services:
            wait_healthy(service, 60.0)
        # The first replica creates the tracker tables; the others start once it has.
        first = start_rasa(model, actions.url, log_dir, stores=stores, name="rasa")
        stack.services.append(first)
        wait_healthy(first, rasa_timeout)
        others = [
            start_rasa(model, actions.url, log_dir, stores=stores, name=f"rasa-{n}")
            for n in range(1, rasa_replicas)
        ]
        stack.services.extend(others)
        for replica in others:
            wait_healthy(replica, rasa_timeout)
        stack.rasa_urls = [first.url, *(replica.url for replica in others)]
        stack.rasa_url = first.url
        yield stack
    finally:
        stack.stop()
