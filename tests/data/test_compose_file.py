"""docker-compose.yml describes the production stack; Docker cannot run here, so read it."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from pydantic_settings import BaseSettings
from typer.testing import CliRunner

from api.core.config import Settings
from bot.config import BotSettings
from kopa.cli import app
from kopa.paths import ROOT

COMPOSE = ROOT / "docker-compose.yml"
STACK = {"postgres", "redis", "rasa", "actions", "api", "bot", "notifier"}
ONE_SHOT = {"migrate"}
REQUIRED = re.compile(r"^\$\{[A-Z0-9_]+:\?[^}]*\}$")
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PEPPER|KEY", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _secret_env_names(settings: type[BaseSettings], prefix: str = "KOPA_") -> set[str]:
    """Environment names of every SecretStr in a settings class, nested groups included."""
    names: set[str] = set()

    def walk(model: Any, path: str) -> None:
        for name, info in model.model_fields.items():
            annotation = info.annotation
            if annotation is SecretStr:
                names.add(f"{path}{name}".upper())
            elif isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                walk(annotation, f"{path}{name}__")

    walk(settings, prefix)
    return names


def test_every_part_of_the_stack_is_a_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= STACK


def test_services_have_health_checks_and_start_after_healthy_dependencies(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name, service in services.items():
        if name not in ONE_SHOT:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            wanted = (
                "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            )
            assert rule == {"condition": wanted}, f"{name} -> {dependency}: {rule}"
    assert "api" in services["bot"]["depends_on"] and "rasa" in services["bot"]["depends_on"]
    assert "actions" in services["rasa"]["depends_on"]


def test_no_secret_is_written_in_the_file(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for placeholder in (
        "dev-service-token",
        "dev-payment-webhook-secret",
        "dev-pepper",
        "dev-telegram",
        "dev-whatsapp",
    ):
        assert placeholder not in text
    for name, service in compose["services"].items():
        for key, value in _environment(service).items():
            if SECRET_NAME.search(key):
                assert REQUIRED.match(value), f"{name}: {key} must be ${{VAR:?...}}, not {value!r}"
            # A secret inside a URL (the database password) is a reference too.
            if "@" in value and "://" in value:
                credentials = value.split("://", 1)[1].split("@", 1)[0]
                assert re.search(r"\$\{[A-Z_]+:\?", credentials), f"{name}: {key}"


def test_every_secret_the_code_reads_is_required_by_the_app_services(
    compose: dict[str, Any],
) -> None:
    secrets = _secret_env_names(Settings) | _secret_env_names(BotSettings)
    assert {"KOPA_SERVICE_TOKEN", "KOPA_HASH_PEPPER", "KOPA_TELEGRAM__TOKEN"} <= secrets
    for name in ("api", "bot", "notifier", "actions"):
        env = _environment(compose["services"][name])
        assert env.get("KOPA_ENV") == "production"
        for secret in secrets:
            assert REQUIRED.match(env.get(secret, "")), f"{name} lacks {secret}"


def test_build_contexts_and_copied_paths_exist(compose: dict[str, Any]) -> None:
    built = 0
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is None:
            assert ":" in service["image"], f"{name} must pin an image tag"
            continue
        built += 1
        context = (ROOT / build["context"]).resolve()
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert context.is_dir() and dockerfile.is_file(), name
        for line in dockerfile.read_text(encoding="utf-8").splitlines():
            if line.startswith("COPY "):
                *sources, _target = shlex.split(line)[1:]
                for source in sources:
                    assert (context / source).exists(), f"{dockerfile}: {source} is missing"
    assert built >= 2


def test_images_run_the_pinned_rasa_and_python(compose: dict[str, Any]) -> None:
    nlu = (ROOT / "nlu" / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM python:3.10" in nlu
    assert "rasa==3.6.21" in (ROOT / "nlu" / "requirements.lock").read_text(encoding="utf-8")
    assert "FROM python:3.11" in (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_service_commands_exist_in_the_kopa_cli(compose: dict[str, Any]) -> None:
    runner = CliRunner()
    checked = 0
    for name, service in compose["services"].items():
        command = service.get("command") or []
        # A shell line ("sh -c 'a && b'") runs each of its commands.
        commands = (
            [shlex.split(part) for part in command[2].split("&&")]
            if command[:2] == ["sh", "-c"]
            else [command]
        )
        for one in commands:
            if one[:3] != ["python", "-m", "kopa.cli"]:
                continue
            words = [w for w in one[3:] if not w.startswith("-")]
            words = words[: next((i for i, w in enumerate(words) if "." in w or w.isdigit()), None)]
            result = runner.invoke(app, [*words, "--help"])
            assert result.exit_code == 0, f"{name}: kopa {' '.join(words)}: {result.output}"
            checked += 1
    assert checked >= 5


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = set(Path(ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".venv", ".venv-rasa", ".env", "var", ".git"} <= ignored


def test_rasa_replicas_share_a_redacted_sql_tracker_store_and_the_redis_lock_store(
    compose: dict[str, Any],
) -> None:
    """As ``kopa stack up`` runs them: a variable number of replicas, the trackers in
    PostgreSQL's kopa_rasa (created by the one-shot migrate service before any replica) behind
    the redacting store, the locks in Redis, and gateways that find every replica by DNS."""
    rasa = compose["services"]["rasa"]
    assert rasa["deploy"]["replicas"] == "${KOPA_RASA_REPLICAS:-2}"
    assert rasa["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "rasa-store" in " ".join(compose["services"]["migrate"]["command"])
    dockerfile = (ROOT / "nlu" / "Dockerfile").read_text(encoding="utf-8")
    printed = re.search(r"RUN printf '%s\\n' \\\n(.*?)> endpoints\.docker\.yml", dockerfile, re.S)
    assert printed is not None
    endpoints = yaml.safe_load(
        "\n".join(re.findall(r"^\s*'(.*)' \\$", printed.group(1), re.MULTILINE))
    )
    tracker, lock = endpoints["tracker_store"], endpoints["lock_store"]
    assert tracker["type"] == "components.redacting_tracker_store.RedactingTrackerStore"
    assert (tracker["wrapped_type"], tracker["dialect"], tracker["db"]) == (
        "sql",
        "postgresql",
        "kopa_rasa",
    )
    rasa_env = _environment(rasa)
    # Hosts come from the environment (Compose and Kubernetes name them differently).
    assert (tracker["url"], tracker["username"], lock["url"]) == (
        "${POSTGRES_HOST}",
        "${POSTGRES_USER}",
        "${REDIS_HOST}",
    )
    assert (rasa_env["POSTGRES_HOST"], rasa_env["REDIS_HOST"]) == ("postgres", "redis")
    assert lock["type"] == "redis"
    app_env = _environment(compose["services"]["bot"])
    assert (app_env["KOPA_RASA_URL"], app_env["KOPA_RASA_DISCOVERY"]) == (
        "http://rasa:5005",
        "dns",
    )
    assert app_env["KOPA_RETENTION__TRACKER_STORE_URL"].endswith("@postgres:5432/kopa_rasa")
    assert str(lock["db"]) in app_env["KOPA_RETENTION__LOCK_REDIS_URL"]
