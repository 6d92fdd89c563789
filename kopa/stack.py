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
    """The running services; ``rasa_url`` is what a gateway's :class:`RasaClient` needs."""

    api_url: str | None = None
    actions_url: str | None = None
    rasa_url: str | None = None
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


def _spawn(
    name: str, command: list[str], port: int, health_path: str, env: dict[str, str], log_dir: Path
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
    return Service(name, f"http://{HOST}:{port}", health_path, process, log_path)


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


def start_api(
    database_url: str,
    token: str,
    log_dir: Path,
    extra_env: dict[str, str],
    port: int | None = None,
) -> Service:
    """Start the loan API (``port``: reuse one, e.g. to bring the API back after an outage)."""
    port = port or free_port()
    env = _base_env({"KOPA_DATABASE_URL": database_url, "KOPA_SERVICE_TOKEN": token, **extra_env})
    command = [
        sys.executable, "-m", "uvicorn", "api.main:app",
        "--host", HOST, "--port", str(port), "--log-level", "warning", "--no-access-log",
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


def start_rasa(model: Path, actions_url: str, log_dir: Path) -> Service:
    port = free_port()
    endpoints = log_dir / "endpoints.yml"
    log_dir.mkdir(parents=True, exist_ok=True)
    # The secret stays in the environment: Rasa expands ${...} when it reads the file (only in
    # an unquoted YAML value).
    endpoints.write_text(
        "action_endpoint:\n"
        f'  url: "{actions_url}/webhook"\n'
        "  headers:\n"
        f"    {ACTION_TOKEN_HEADER}: ${{KOPA_ACTION_SERVER_TOKEN}}\n"
    )
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
        }
    )
    return _spawn("rasa", command, port, "/webhooks/rest/", env, log_dir)


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
            api = start_api(database_url, token, log_dir, extra)
            stack.services.append(api)
            api_url = api.url
        stack.api_url = api_url
        actions = start_actions(api_url, token, log_dir, extra)
        stack.services.append(actions)
        stack.actions_url = actions.url
        rasa = start_rasa(model, actions.url, log_dir)
        stack.services.append(rasa)
        stack.rasa_url = rasa.url
        for service in stack.services:
            wait_healthy(service, rasa_timeout if service.name == "rasa" else 60.0)
        yield stack
    finally:
        stack.stop()
