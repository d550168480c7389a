"""The CronJob alternative to the KFP schedules (infra/retraining), offline: it renders
with ``kubectl kustomize``, every object passes the Kubernetes 1.30 schemas (strict) and
the hardening rules, the containers run commands the ``hydatis`` CLI accepts, the
schedules are the KFP recurring runs' (less the seconds field), and the identity may
only deploy InferenceServices."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

from cli.main import build_parser
from operations.manifests import check_manifests, render
from pipelines.schedules import DAILY_CRON, WEEKLY_CRON

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "infra" / "retraining"

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render(FOLDER)


def _cronjobs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "CronJob"}


def _pod(cronjob: dict[str, Any]) -> dict[str, Any]:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_renders_and_passes_schemas_and_hardening(docs):
    assert sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs) == [
        "ConfigMap/hydatis-retraining-config",
        "CronJob/hydatis-retrain-full",
        "CronJob/hydatis-retrain-on-drift",
        "PersistentVolumeClaim/hydatis-retraining-work",
    ]
    assert [str(p) for p in check_manifests(docs)] == []
    for d in docs:
        assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "hydatis-ml-scheduler"


def test_the_hardening_check_does_look_at_cronjobs(docs):
    cj = _cronjobs(docs)["hydatis-retrain-full"]
    _pod(cj)["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    _pod(cj)["securityContext"]["runAsUser"] = 0
    problems = [str(p) for p in check_manifests([cj])]
    assert "CronJob/hydatis-retrain-full/retrain: root filesystem writable" in problems
    assert "CronJob/hydatis-retrain-full/retrain: no non-zero runAsUser" in problems


@pytest.mark.parametrize(
    ("name", "kfp_cron"),
    [("hydatis-retrain-on-drift", DAILY_CRON), ("hydatis-retrain-full", WEEKLY_CRON)],
    ids=["daily", "weekly"],
)
def test_schedule_is_the_recurring_runs(docs, name, kfp_cron):
    cj = _cronjobs(docs)[name]
    assert cj["spec"]["schedule"] == kfp_cron.split(" ", 1)[1]  # KFP's cron has seconds
    assert cj["spec"]["concurrencyPolicy"] == "Forbid"
    assert cj["spec"]["timeZone"] == "Etc/UTC"


def _expand(args: list[str], env: list[dict[str, Any]]) -> list[str]:
    """``$(VAR)`` as the kubelet expands it (a value for every variable the pod sets)."""
    names = {e["name"] for e in env}
    out = []
    for a in args:
        for n in names:
            a = a.replace(f"$({n})", "redis://x:6379/0" if n == "REDIS_URL" else f"http://{n}")
        assert "$(" not in a, f"{a}: a variable the container does not set"
        out.append(a)
    return out


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("hydatis-retrain-on-drift", {"if_drift": True, "force": False, "full": False}),
        ("hydatis-retrain-full", {"if_drift": False, "force": True, "full": True}),
    ],
    ids=["on-drift", "full"],
)
def test_containers_run_commands_the_cli_accepts(docs, name, expected):
    pod = _pod(_cronjobs(docs)[name])
    (init,) = pod["initContainers"]
    (main,) = pod["containers"]
    extract = build_parser().parse_args(_expand(init["args"], init.get("env", [])))
    assert extract.command == "extract" and str(extract.out) == "/scratch/dataset"
    args = build_parser().parse_args(_expand(main["args"], main.get("env", [])))
    assert args.command == "retrain" and args.action == "run"
    assert {k: getattr(args, k) for k in expected} == expected
    assert str(args.dataset) == str(extract.out)  # it reads what the init container wrote
    assert args.deploy == "cluster"
    mounts = {m["mountPath"] for m in main["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in main["env"]}
    # everything it writes is on a volume: the work dir, the outputs, the pipeline root
    for path in (env["HYDATIS_WORK_DIR"], str(args.out), str(args.root), env["HOME"]):
        assert any(path == m or path.startswith(m + "/") for m in mounts), path


def test_image_is_the_project_release(docs):
    with (ROOT / "pyproject.toml").open("rb") as fh:
        version = tomllib.load(fh)["project"]["version"]
    for cj in _cronjobs(docs).values():
        pod = _pod(cj)
        for c in pod["initContainers"] + pod["containers"]:
            assert c["image"] == f"ghcr.io/hydatis/ml-scheduler:{version}"


def test_jobs_run_as_the_pipeline_identity_and_grant_nothing_themselves(docs):
    """The jobs run the pipelines' deploy step: the base's ``hydatis-pipeline`` identity
    (get/create/update InferenceServices) is exactly what it needs; no role here."""
    assert not [d for d in docs if d["kind"] in ("Role", "RoleBinding", "ServiceAccount")]
    base = [d for d in render("dev") if d["kind"] == "ServiceAccount"]
    assert "hydatis-pipeline" in {d["metadata"]["name"] for d in base}
    for cj in _cronjobs(docs).values():
        assert _pod(cj)["serviceAccountName"] == "hydatis-pipeline"


def _checkov() -> str | None:
    local = ROOT / ".venv-tools" / "bin" / "checkov"
    return str(local) if local.exists() else shutil.which("checkov")


@pytest.mark.skipif(_checkov() is None, reason="checkov is not installed (make test installs it)")
def test_checkov_passes_with_every_skip_explained(tmp_path):
    import json
    import subprocess

    (tmp_path / "retraining.yaml").write_text(
        subprocess.run(
            ["kubectl", "kustomize", str(FOLDER)], capture_output=True, text=True, check=True
        ).stdout
    )
    proc = subprocess.run(
        [
            str(_checkov()),
            *("--config-file", str(ROOT / ".checkov.yaml"), "-d", str(tmp_path)),
            *("--framework", "kubernetes", "-o", "json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    report = json.loads(proc.stdout)
    summary = (report[0] if isinstance(report, list) else report)["summary"]
    assert summary["failed"] == 0 and summary["passed"] > 0, summary
    for cj in _cronjobs(render(FOLDER)).values():
        for key, text in cj["metadata"].get("annotations", {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = text.partition("=")
                assert check.startswith("CKV_K8S_") and len(reason) > 30, text
