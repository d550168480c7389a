"""The security scanners, run on what ships: checkov on every rendered overlay and on
infra/prometheus (and on the Dockerfile), hadolint on the Dockerfile, bandit on the code.

A scanner that is not installed skips its tests (they live in a tools virtualenv of
their own, ``.venv-tools``, or on the PATH). Each scan fails on any failed check that is
not skipped with a written reason, in the scanner's own way:

- checkov: a ``checkov.io/skip<N>: CKV_...=<reason>`` annotation on the object;
- hadolint: ``# hadolint ignore=DLxxxx`` with a comment giving the reason just above;
- bandit: ``# nosec BXXX <reason>`` on the line, or a skip in bandit.yaml with the reason
  on its line.

Each scanner is also run once on a planted mistake, so a scan that silently checks
nothing cannot pass.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILDS = {
    "dev": "infra/overlays/dev",
    "staging": "infra/overlays/staging",
    "prod": "infra/overlays/prod",
    "prometheus": "infra/prometheus",
}
CODE = [
    "hydatis", "cli", "simulator", "components", "serving", "scheduler_shim", "pipelines",
    "katib", "monitoring", "operations",
]  # fmt: skip
TIMEOUT_S = 300
MIN_REASON = 10  # characters: a reason is a sentence, not "ok"


def tool(name: str) -> str:
    """The scanner's path (the tools virtualenv first, then the PATH), or skip."""
    local = ROOT / ".venv-tools" / "bin" / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (make tools-venv)")
    return found


def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, **kw)


# --- checkov on the rendered manifests --------------------------------------------------


@pytest.fixture(scope="module")
def rendered_dir(tmp_path_factory) -> Path:
    """Each build rendered by ``kubectl kustomize`` into its own file."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not on the PATH: nothing to render")
    out = tmp_path_factory.mktemp("rendered")
    for name, folder in BUILDS.items():
        proc = run([kubectl, "kustomize", str(ROOT / folder)])
        assert proc.returncode == 0, f"kubectl kustomize {folder}:\n{proc.stderr}"
        (out / f"{name}.yaml").write_text(proc.stdout)
    return out


def checkov(target: Path, framework: str) -> list[dict[str, Any]]:
    """checkov's reports (one per framework) on a folder, as JSON."""
    exe = tool("checkov")
    proc = run(
        [exe, "--config-file", str(ROOT / ".checkov.yaml"), "-d", str(target),
         "--framework", framework, "-o", "json"],
        cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode in (0, 1), f"checkov did not run:\n{proc.stderr[-3000:]}"
    reports = json.loads(proc.stdout)
    return reports if isinstance(reports, list) else [reports]


def _failed(reports: list[dict[str, Any]]) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]


@pytest.fixture(scope="module")
def manifest_reports(rendered_dir) -> list[dict[str, Any]]:
    return checkov(rendered_dir, "kubernetes")


def test_checkov_passes_every_rendered_build(manifest_reports):
    reports = manifest_reports
    assert sum(r["summary"]["passed"] for r in reports) > 0, "checkov checked nothing"
    assert _failed(reports) == []


def test_checkov_skips_carry_reasons(rendered_dir, manifest_reports):
    skip = re.compile(r"^(CKV2?_[A-Z0-9]+_\d+)=(.+)$", re.DOTALL)
    seen = 0
    for path in sorted(rendered_dir.glob("*.yaml")):
        for doc in (d for d in yaml.safe_load_all(path.read_text()) if d):
            for key, value in (doc["metadata"].get("annotations") or {}).items():
                if key.startswith("checkov.io/skip"):
                    m = skip.match(value.strip())
                    assert m, f"{path.name} {doc['metadata']['name']}: {key} is not ID=reason"
                    assert len(m[2].strip()) >= MIN_REASON, f"{key}: no real reason"
                    seen += 1
    skipped = sum(r["summary"]["skipped"] for r in manifest_reports)
    assert skipped == seen, "checkov skipped checks that no annotation names"


def test_checkov_catches_a_planted_mistake(tmp_path):
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bad", "namespace": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "nginx:latest",
                            "securityContext": {"privileged": True},
                        }
                    ]
                },
            },
        },
    }
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    failed = " ".join(_failed(checkov(tmp_path, "kubernetes")))
    assert "CKV_K8S_16" in failed  # privileged container


def test_checkov_passes_the_dockerfile(tmp_path):
    shutil.copy(ROOT / "Dockerfile", tmp_path / "Dockerfile")
    reports = checkov(tmp_path, "dockerfile")
    assert sum(r["summary"]["passed"] for r in reports) > 0
    assert _failed(reports) == []


# --- hadolint on the Dockerfile ---------------------------------------------------------


def hadolint(path: Path) -> list[dict[str, Any]]:
    proc = run([tool("hadolint"), "-c", str(ROOT / ".hadolint.yaml"), "-f", "json", str(path)])
    assert proc.stdout.strip(), f"hadolint did not run:\n{proc.stderr}"
    return json.loads(proc.stdout)


def test_hadolint_passes_the_dockerfile():
    findings = hadolint(ROOT / "Dockerfile")
    assert [f"{f['code']} line {f['line']}: {f['message']}" for f in findings] == []


def test_hadolint_ignores_carry_reasons():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore=" in line:
            above = lines[i - 1].strip() if i else ""
            assert re.fullmatch(r"# hadolint ignore=DL\d{4}(,DL\d{4})*", line.strip()), line
            assert above.startswith("#") and len(above) > MIN_REASON, f"line {i + 1}: no reason"


def test_hadolint_catches_a_planted_mistake(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\n")
    codes = {f["code"] for f in hadolint(bad)}
    assert {"DL3007", "DL3013"} <= codes  # :latest, unpinned pip install


# --- bandit on the code -----------------------------------------------------------------


def bandit(paths: list[str], cwd: Path = ROOT) -> dict[str, Any]:
    proc = run(
        [tool("bandit"), "-c", str(ROOT / "bandit.yaml"), "-r", *paths, "-f", "json", "-q"],
        cwd=cwd,
    )
    assert proc.returncode in (0, 1), f"bandit did not run:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


def test_bandit_passes_the_code():
    report = bandit([p for p in CODE if (ROOT / p).exists()])
    assert report["errors"] == []
    assert report["metrics"]["_totals"]["loc"] > 1000, "bandit read almost nothing"
    found = [
        f"{r['test_id']} {r['filename']}:{r['line_number']}: {r['issue_text']}"
        for r in report["results"]
    ]
    assert found == []


def test_bandit_skips_carry_reasons():
    text = (ROOT / "bandit.yaml").read_text()
    skips = yaml.safe_load(text).get("skips", [])
    for test_id in skips:
        (line,) = [ln for ln in text.splitlines() if re.match(rf"\s*-\s*{test_id}\b", ln)]
        reason = line.partition("#")[2].strip()
        assert len(reason) >= MIN_REASON, f"bandit.yaml skips {test_id} without a reason"
    nosec = re.compile(r"#\s*nosec\b(.*)$")
    for folder in CODE:
        for path in sorted((ROOT / folder).rglob("*.py")) if (ROOT / folder).exists() else []:
            for n, line in enumerate(path.read_text().splitlines(), 1):
                m = nosec.search(line)
                if m is None:
                    continue
                where = f"{path.relative_to(ROOT)}:{n}"
                ids = re.match(r"\s*(B\d{3}(?:\s*,\s*B\d{3})*)\s+(.*)$", m[1])
                assert ids, f"{where}: # nosec names no test id (B###) and reason"
                assert len(ids[2].strip()) >= MIN_REASON, f"{where}: # nosec without a reason"


def test_bandit_catches_a_planted_mistake(tmp_path):
    (tmp_path / "bad.py").write_text("import subprocess\nsubprocess.call('ls ' + x, shell=True)\n")
    ids = {r["test_id"] for r in bandit([str(tmp_path)], cwd=tmp_path)["results"]}
    assert "B602" in ids  # a shell command built from a variable
