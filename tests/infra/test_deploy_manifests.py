"""The deployment manifests (infra/deploy): they parse, and what they run exists.

No container is started here: the checks are that every file is valid YAML, every
command a platform container runs is a real command of the project with options it
accepts, every GOLOS_ variable they set is a setting, secrets come only from env
files or Secrets, and the pieces refer to each other correctly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from api.cli import app as cli_app
from infra.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "infra" / "deploy"
K8S = DEPLOY / "k8s"
IMAGE = "golos:"  # the platform's image, any tag
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|DATABASE_URL")


def _documents(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert docs, f"{path} is empty"
    assert all(isinstance(d, dict) for d in docs), path
    return docs


def _compose() -> dict[str, Any]:
    [compose] = _documents(DEPLOY / "compose.yaml")
    return compose


def _k8s_documents() -> list[dict[str, Any]]:
    return [d for path in sorted(K8S.glob("*.yaml")) for d in _documents(path)]


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    """(workload name, pod spec) of every Deployment, StatefulSet and Job."""
    specs = []
    for doc in _k8s_documents():
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            specs.append((doc["metadata"]["name"], doc["spec"]["template"]["spec"]))
    return specs


def _entrypoint() -> list[str]:
    """The image's ENTRYPOINT (the Dockerfile's)."""
    return json.loads(
        re.search(r"^ENTRYPOINT\s+(\[.*\])", _dockerfile(), re.M).group(1)  # type: ignore[union-attr]
    )


def _platform_commands() -> list[list[str]]:
    """The argv of every container of the platform's image, compose's and k8s's."""
    entrypoint = _entrypoint()
    commands = []
    for service in _compose()["services"].values():
        if str(service.get("image", "")).startswith(IMAGE):
            commands.append([*service.get("entrypoint", entrypoint), *service["command"]])
    for _, spec in _pod_specs():
        for container in spec["containers"]:
            if str(container["image"]).startswith(IMAGE):
                commands.append([*container["command"], *container.get("args", [])])
    return commands


def _dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text(encoding="utf-8")


def test_every_manifest_is_valid_yaml() -> None:
    files = sorted(DEPLOY.rglob("*.yaml"))
    assert DEPLOY / "compose.yaml" in files and len(files) >= 10
    for path in files:
        _documents(path)
    json.loads((DEPLOY / "minio-policy.json").read_text(encoding="utf-8"))


def test_platform_containers_run_real_golos_commands() -> None:
    root = typer.main.get_command(cli_app)
    seen = set()
    for argv in _platform_commands():
        assert argv[0] == "golos", argv
        command, words = root, argv[1:]
        path: list[str] = []
        # typer's commands (it carries its own click): a group has .commands.
        while getattr(command, "commands", None):
            name, words = words[0], words[1:]
            found = command.commands.get(name)  # type: ignore[attr-defined]
            assert found is not None, f"no command {' '.join([*path, name])!r}: {argv}"
            command, path = found, [*path, name]
        # Parsing the options, as the command line would: an unknown option or a bad
        # value raises here.
        command.make_context(" ".join(path), list(words))
        seen.add(" ".join(path))
    assert {"serve", "worker", "db migrate"} <= seen


def test_every_golos_variable_set_is_a_setting() -> None:
    fields = set(Settings.model_fields)
    names: set[str] = set()
    for service in _compose()["services"].values():
        names |= set(service.get("environment", {}))
    for doc in _k8s_documents():
        if doc["kind"] in ("ConfigMap", "Secret"):
            names |= set(doc.get("data", {})) | set(doc.get("stringData", {}))
    for example in (DEPLOY / "secrets").glob("*.env.example"):
        for line in example.read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                names.add(line.split("=", 1)[0])
    golos = {n for n in names if n.startswith("GOLOS_") and not n.startswith("GOLOS_S3_ACCESS")}
    golos -= {"GOLOS_S3_SECRET_KEY"}  # MinIO's user to create (minio-setup), not a setting
    assert golos, names
    unknown = {n for n in golos if n.removeprefix("GOLOS_").lower() not in fields}
    assert not unknown, f"not settings of infra/settings.py: {sorted(unknown)}"


def test_secrets_come_from_env_files_and_secrets_only() -> None:
    for name, service in _compose()["services"].items():
        inline = [n for n in service.get("environment", {}) if SECRET_NAME.search(n)]
        assert not inline, f"{name} sets secrets inline: {inline}"
        for env_file in service.get("env_file", []):
            assert (DEPLOY / f"{env_file}.example").is_file(), env_file
    ignored = (DEPLOY / ".gitignore").read_text(encoding="utf-8")
    assert "secrets/*.env" in ignored
    for doc in _k8s_documents():
        if doc["kind"] == "ConfigMap":
            leaked = [n for n in doc["data"] if SECRET_NAME.search(n)]
            assert not leaked, f"{doc['metadata']['name']} holds secrets: {leaked}"
    for _, spec in _pod_specs():
        for container in spec["containers"]:
            for variable in container.get("env", []):
                assert not (SECRET_NAME.search(variable["name"]) and "value" in variable)
    kustomization = _documents(K8S / "kustomization.yaml")[0]
    assert "secrets.template.yaml" not in kustomization["resources"]


def test_the_api_is_checked_through_healthz() -> None:
    compose = _compose()["services"]
    assert "/healthz" in " ".join(compose["api"]["healthcheck"]["test"])
    assert compose["proxy"]["depends_on"]["api"]["condition"] == "service_healthy"
    [api] = [spec for name, spec in _pod_specs() if name == "golos-api"]
    [container] = api["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    # Liveness without the database: its restart must not restart every API pod.
    assert "tcpSocket" in container["livenessProbe"]


def _workers() -> list[tuple[str, list[str], int, bool]]:
    """Every worker workload, compose's services and k8s's Deployments: (name, argv,
    replicas, whether it is scaled: an autoscaler's target, or a compose service
    the file's usage scales with ``--scale``)."""
    entrypoint = _entrypoint()
    compose = _compose()
    usage = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    workers = []
    for name, service in compose["services"].items():
        argv = [*service.get("entrypoint", entrypoint), *service.get("command", [])]
        if argv[:2] == ["golos", "worker"]:
            scaled = f"--scale {name}=" in usage
            workers.append((f"compose {name}", argv, service["deploy"]["replicas"], scaled))
    docs = _k8s_documents()
    autoscaled = {
        d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"
    }
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            argv = [*container["command"], *container.get("args", [])]
            if argv[:2] == ["golos", "worker"]:
                name = doc["metadata"]["name"]
                workers.append((f"k8s {name}", argv, doc["spec"]["replicas"], name in autoscaled))
    return workers


def test_one_worker_writes_reports_and_the_scaled_ones_read_ballots_only() -> None:
    workers = _workers()
    readers = [w for w in workers if "--ballots-only" in w[1]]
    writers = [w for w in workers if "--ballots-only" not in w[1]]
    # Compose's and k8s's: one report writer each, never scaled, alone in its
    # deployment; it runs a second process for ballots (--processes 2).
    assert [w[0].split()[0] for w in writers] == ["compose", "k8s"], writers
    for name, argv, replicas, scaled in writers:
        assert replicas == 1 and not scaled, name
        assert "--processes" in argv, name
    # Every scaled worker deployment reads ballots only, one process per pod.
    assert [w[0].split()[0] for w in readers] == ["compose", "k8s"], readers
    for name, argv, _, scaled in readers:
        assert scaled and argv == ["golos", "worker", "--ballots-only"], name


def test_the_kubernetes_pieces_fit_together() -> None:
    docs = _k8s_documents()
    kustomization = _documents(K8S / "kustomization.yaml")[0]
    listed = set(kustomization["resources"])
    assert listed == {
        p.name
        for p in K8S.glob("*.yaml")
        if p.name not in ("kustomization.yaml", "secrets.template.yaml")
    }
    workloads = {
        d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")
    }
    for doc in docs:
        if doc["kind"] in ("Namespace", "Kustomization"):
            continue
        if "metadata" in doc and doc.get("apiVersion") != "kustomize.config.k8s.io/v1beta1":
            assert doc["metadata"].get("namespace") == "golos", doc["metadata"]
    kinds = {d["kind"] for d in docs}
    assert {
        "Namespace",
        "Secret",
        "ConfigMap",
        "StatefulSet",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
    } <= kinds
    for doc in docs:
        if doc["kind"] == "HorizontalPodAutoscaler":
            assert doc["spec"]["scaleTargetRef"]["name"] in workloads
        if doc["kind"] in ("PodDisruptionBudget", "Service"):
            selector = doc["spec"]["selector"]
            labels = selector.get("matchLabels", selector)
            assert any(
                labels.items() <= w["spec"]["template"]["metadata"]["labels"].items()
                for w in workloads.values()
            ), doc["metadata"]["name"]
    referenced = {
        ref[key]["name"]
        for _, spec in _pod_specs()
        for container in spec["containers"]
        for ref in container.get("envFrom", [])
        for key in ("configMapRef", "secretRef")
        if key in ref
    }
    defined = {d["metadata"]["name"] for d in docs if d["kind"] in ("ConfigMap", "Secret")}
    assert referenced <= defined, referenced - defined
    for name, spec in _pod_specs():
        for container in spec["containers"]:
            requests = container["resources"]["requests"]
            assert {"cpu", "memory"} <= set(requests), name


def test_the_image_installs_what_system_deps_installs_for_running() -> None:
    dockerfile = _dockerfile()
    assert re.search(r"^FROM python:3\.11-slim-bookworm", dockerfile, re.M)
    wanted = set(
        re.findall(
            r"missing\+=\((tesseract[\w-]*)", (ROOT / "infra" / "system-deps.sh").read_text()
        )
    )
    wanted |= set(re.findall(r"tesseract-ocr-\w+", (ROOT / "infra" / "system-deps.sh").read_text()))
    assert wanted and all(package in dockerfile for package in wanted), wanted
    assert "-c constraints.txt" in dockerfile
    assert re.search(r"^USER golos", dockerfile, re.M)


@pytest.mark.parametrize("path", sorted(p.name for p in (DEPLOY / "secrets").glob("*.example")))
def test_secret_templates_hold_no_real_value(path: str) -> None:
    for line in (DEPLOY / "secrets" / path).read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            assert "CHANGE-ME" in line.split("=", 1)[1], line


def test_the_proxies_keep_uploads_in_memory_never_in_a_file() -> None:
    # An upload carries its photo's metadata until the API strips it: a proxy that
    # spills a body larger than its buffer to a temporary file puts it on a disk.
    nginx = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    settings = dict(re.findall(r"^\s*(client_\w+)\s+([^;]+);", nginx, re.MULTILINE))
    assert settings["client_body_buffer_size"] == settings["client_max_body_size"]
    assert "client_body_in_file_only" not in settings
    assert re.search(r"^\s*error_log\s+stderr\s", nginx, re.MULTILINE)
    [ingress] = [d for d in _k8s_documents() if d.get("kind") == "Ingress"]
    notes = ingress["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert notes[prefix + "client-body-buffer-size"] == notes[prefix + "proxy-body-size"]
