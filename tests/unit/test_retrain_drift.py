"""``hydatis retrain --if-drift`` as a process on tiny data: four days of four nodes, the
reference the first two; on the unchanged history it checks, says why, and retrains
nothing; with the load scaled by 1.6 from day 3 (``monitoring.drift.inject``) it retrains
through the real pipeline (``kfp.local``, the anomaly detector at the tiny budget), and
the registry holds what the gate step decided. ``--force`` retrains regardless."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hydatis.dataset import save_dataset
from monitoring.drift.inject import scale_load
from monitoring.drift.synthetic import synthetic_history

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_UNTIL = "2024-01-03T00:00:00Z"
CHANGE_AT = pd.Timestamp("2024-01-03T06:00:00Z")
TINY = ("--models", "anomaly", "--budget", "tiny", "--seed", "0")
DRIFT_CONFIG = "features: [cpu_util, mem_util, cpu_mean_15m, cpu_mean_1h]\npersistence_windows: 2\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("retrain")
    base = synthetic_history(nodes=4, days=4, step_s=300, seed=0)
    save_dataset(base, root / "same")
    save_dataset(scale_load(base, CHANGE_AT, 1.6), root / "changed")
    (root / "drift.yaml").write_text(DRIFT_CONFIG)
    return {"root": root}


def retrain(world: dict[str, Path], *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    root = world["root"]
    out = root / f"out-{len(list(root.glob('out-*')))}"
    env = {**os.environ, "HYDATIS_WORK_DIR": str(root / "work")}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "retrain", *args, "--out", str(out), *TINY],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads((out / "retrain.json").read_text())


def drift_args(world: dict[str, Path], dataset: str) -> list[str]:
    root = world["root"]
    return [
        "--if-drift",
        "--dataset",
        str(root / dataset),
        "--reference-until",
        REFERENCE_UNTIL,
        "--drift-config",
        str(root / "drift.yaml"),
    ]


def registry(world: dict[str, Path]):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{world['root'] / 'work' / 'mlflow' / 'mlflow.db'}"
    return MlflowClient(uri, uri)


def test_no_drift_checks_says_why_and_does_not_retrain(world):
    proc, summary = retrain(world, *drift_args(world, "same"))
    assert summary["retrained"] is False and summary["drift_kinds"] == []
    assert summary["windows_checked"] == 48  # days 3 and 4, hour by hour
    assert summary["reason"].startswith("no kind in drift over 48 new window(s)")
    assert "Not retraining: no kind in drift" in proc.stdout.replace("\n", " ")
    assert "pipeline" not in summary
    assert not (world["root"] / "work" / "mlflow").exists()  # nothing registered


def test_injected_drift_retrains_through_the_gate(world):
    _, summary = retrain(world, *drift_args(world, "changed"))
    assert summary["retrained"] is True
    assert {"data", "target"} <= set(summary["drift_kinds"])
    assert summary["pipeline"] == "retraining"
    assert summary["arguments"]["features_uri"].endswith("drift/features")
    (outcome,) = summary["outcomes"]
    assert outcome["kind"] == "anomaly" and outcome["reason"]
    assert outcome["alias"] in ("champion", "challenger")
    mv = registry(world).get_model_version_by_alias(outcome["name"], outcome["alias"])
    assert str(mv.version) == outcome["version"]
    assert outcome["promoted"] is (outcome["alias"] == "champion")


def test_force_retrains_data_without_drift(world):
    root = world["root"]
    _, summary = retrain(world, "--force", "--dataset", str(root / "same"))
    assert summary["retrained"] is True and summary["reason"] == "forced (--force)"
    (outcome,) = summary["outcomes"]
    versions = registry(world).search_model_versions(f"name='{outcome['name']}'")
    assert outcome["version"] in {str(v.version) for v in versions}
    assert len(versions) == 2  # one per retraining run, each through the gate
