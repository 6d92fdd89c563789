"""deploy/k8s/ runs the services of docker-compose.yml on Kubernetes; no cluster runs here, so
the manifests are checked against the Kubernetes API's own schemas (``kubernetes-validate``)
and against the compose file they must match."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from api.core.config import Settings
from bot.config import BotSettings
from kopa.paths import ROOT
from tests.data.test_compose_file import _secret_env_names

K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"


def _documents() -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, doc)
        for path in sorted(K8S.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc
    ]


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in _documents() if doc["kind"] == kind}


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    [container] = workload["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("path,doc", _documents(), ids=lambda v: getattr(v, "name", ""))
def test_every_manifest_is_valid_for_the_kubernetes_api(path: Path, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_refuses_a_broken_manifest() -> None:
    broken = yaml.safe_load((K8S / "api.yaml").read_text(encoding="utf-8").split("---")[0])
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_workloads_are_compose_services_running_the_same_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    workloads = {**_by_kind("Deployment"), **_by_kind("Job")}
    app_services = {"api", "actions", "rasa", "bot", "notifier", "migrate"}
    assert set(workloads) == app_services
    for name in app_services - {"rasa"}:
        command = _container(workloads[name])["command"]
        assert (
            command[: len(compose["services"][name]["command"]) - 4]
            == (compose["services"][name]["command"][: len(command) - 4])
        ), name


def test_rasa_replicas_are_found_by_dns_and_every_server_has_probes() -> None:
    services = _by_kind("Service")
    assert services["rasa"]["spec"]["clusterIP"] == "None"  # one DNS record per replica
    config = _by_kind("ConfigMap")["kopa-config"]["data"]
    assert (config["KOPA_RASA_URL"], config["KOPA_RASA_DISCOVERY"]) == ("http://rasa:5005", "dns")
    assert _by_kind("Deployment")["rasa"]["spec"]["replicas"] >= 2
    for name, deployment in _by_kind("Deployment").items():
        container = _container(deployment)
        if container.get("ports"):
            assert {"readinessProbe", "livenessProbe"} <= set(container), name
            assert name in services, name
        assert {"secretRef": {"name": "kopa-secrets"}} in container["envFrom"], name


def test_the_secret_example_holds_placeholders_for_every_secret_the_code_reads() -> None:
    [secret] = _by_kind("Secret").values()
    values = secret["stringData"]
    assert set(values) >= (
        _secret_env_names(BotSettings) | _secret_env_names(Settings) | {"POSTGRES_PASSWORD"}
    )
    for name, value in values.items():
        if any(word in name for word in ("TOKEN", "SECRET", "PASSWORD", "PEPPER")):
            assert value == "CHANGE-ME", name
