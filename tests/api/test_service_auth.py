"""Rasa's HTTP API and the action server answer only their callers (defect 8, service part).

The action server runs as the stack starts it (``actions/server.py`` in a subprocess); a request
without the shared secret gets 401 and runs no action. Development placeholders are refused
when ``KOPA_ENV=production``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from actions.server import DEV_ACTION_SERVER_TOKEN, TOKEN_HEADER, ActionServerSettings
from kopa import stack as kopa_stack
from kopa.paths import NLU_DIR, RASA_VENV, ROOT

ACTION_CALL = {
    "next_action": "action_request_officer",
    "sender_id": "tg:somebody-else",
    "tracker": {"sender_id": "tg:somebody-else", "slots": {}, "latest_message": {}, "events": []},
    "domain": {},
    "version": "3.6.21",
}


@pytest.fixture(scope="module")
def action_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kopa_stack.Service]:
    log_dir = tmp_path_factory.mktemp("actions")
    # The loan API is nowhere: a request that got through would answer "try again", not 401.
    service = kopa_stack.start_actions(
        "http://127.0.0.1:9", "service-token", log_dir, {"KOPA_ACTION_SERVER_TOKEN": "s3cret-A"}
    )
    try:
        kopa_stack.wait_healthy(service, 60.0)
        yield service
    finally:
        service.stop()


def test_the_action_server_refuses_requests_without_the_shared_secret(
    action_server: kopa_stack.Service,
) -> None:
    url = action_server.url
    with httpx.Client(timeout=10.0) as client:
        assert client.get(f"{url}/health").status_code == 200
        for headers in ({}, {TOKEN_HEADER: "wrong"}, {TOKEN_HEADER: DEV_ACTION_SERVER_TOKEN}):
            webhook = client.post(f"{url}/webhook", json=ACTION_CALL, headers=headers)
            assert (webhook.status_code, webhook.json()) == (401, {"error": "unauthorized"})
            assert client.get(f"{url}/actions", headers=headers).status_code == 401
        allowed = client.post(
            f"{url}/webhook", json=ACTION_CALL, headers={TOKEN_HEADER: "s3cret-A"}
        )
        assert allowed.status_code == 200
        assert allowed.json()["responses"][0]["custom"]["key"] == "common.try_again_shortly"
    log = action_server.log_path.read_text(encoding="utf-8")
    assert "refused a request without the shared secret" in log
    assert "wrong" not in log and "s3cret-A" not in log


def test_placeholders_are_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOPA_ENV", "production")
    monkeypatch.delenv("KOPA_ACTION_SERVER_TOKEN", raising=False)
    with pytest.raises(ValueError, match="KOPA_ACTION_SERVER_TOKEN"):
        ActionServerSettings()
    monkeypatch.setenv("KOPA_ACTION_SERVER_TOKEN", "a-real-secret")
    assert ActionServerSettings().action_server_token.get_secret_value() == "a-real-secret"


def test_every_way_rasa_starts_asks_for_the_token_and_sends_the_secret() -> None:
    """The native stack, the Dockerfile, docker-compose and the hand-run endpoints file."""
    endpoints = yaml.safe_load((NLU_DIR / "endpoints.yml").read_text(encoding="utf-8"))
    headers = endpoints["action_endpoint"]["headers"]
    assert headers == {TOKEN_HEADER: "${KOPA_ACTION_SERVER_TOKEN}"}
    dockerfile = (NLU_DIR / "Dockerfile").read_text(encoding="utf-8")
    assert '--auth-token \\"$KOPA_RASA_TOKEN\\"' in dockerfile
    assert "${KOPA_RASA_TOKEN:?" in dockerfile and f"{TOKEN_HEADER}: " in dockerfile
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    rasa_env = compose["services"]["rasa"]["environment"]
    assert set(rasa_env) >= {"KOPA_RASA_TOKEN", "KOPA_ACTION_SERVER_TOKEN"}
    assert {name for name in rasa_env if "TOKEN" in name or "SECRET" in name} == {
        "KOPA_RASA_TOKEN",
        "KOPA_ACTION_SERVER_TOKEN",
    }
    assert compose["services"]["actions"]["command"][:3] == ["python", "-m", "actions.server"]


def test_the_native_stack_starts_rasa_with_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[list[str], dict[str, str]]] = []

    def spawn(name: str, command: list[str], port: int, health: str, env: dict[str, str],
              log_dir: Path) -> None:  # fmt: skip
        started.append((command, env))

    monkeypatch.setattr(kopa_stack, "_spawn", spawn)
    monkeypatch.setenv("KOPA_RASA_TOKEN", "rasa-tok")
    monkeypatch.setenv("KOPA_ACTION_SERVER_TOKEN", "act-tok")
    kopa_stack.start_rasa(tmp_path / "model.tar.gz", "http://127.0.0.1:1", tmp_path)
    [(command, env)] = started
    assert command[command.index("--auth-token") + 1] == "rasa-tok"
    assert env["KOPA_ACTION_SERVER_TOKEN"] == "act-tok"
    written = yaml.safe_load((tmp_path / "endpoints-rasa.yml").read_text(encoding="utf-8"))
    assert written["action_endpoint"]["headers"] == {TOKEN_HEADER: "${KOPA_ACTION_SERVER_TOKEN}"}
    assert "act-tok" not in (tmp_path / "endpoints-rasa.yml").read_text(encoding="utf-8")


def test_rasa_itself_reads_the_secret_header_from_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rasa expands ``${VAR}`` only in unquoted YAML values: read both endpoint files with
    Rasa's own reader, as ``rasa run`` does."""
    rasa_python = RASA_VENV / "bin" / "python"
    if not rasa_python.exists():
        pytest.skip("Rasa's virtualenv is not installed")
    written = tmp_path / "endpoints-rasa.yml"
    monkeypatch.setattr(kopa_stack, "_spawn", lambda *args, **kwargs: None)
    kopa_stack.start_rasa(tmp_path / "model.tar.gz", "http://127.0.0.1:1", tmp_path)
    script = (
        "import sys\n"
        "from rasa.utils.endpoints import read_endpoint_config\n"
        "for path in sys.argv[1:]:\n"
        "    print(read_endpoint_config(path, 'action_endpoint').headers)\n"
    )
    done = subprocess.run(
        [str(rasa_python), "-c", script, str(written), str(NLU_DIR / "endpoints.yml")],
        capture_output=True, text=True, timeout=120, check=True,
        env={**os.environ, "KOPA_ACTION_SERVER_TOKEN": "expanded-XYZ"},
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()[-2:]
    assert lines == [f"{{'{TOKEN_HEADER}': 'expanded-XYZ'}}"] * 2
