"""The placement benchmark end to end in its smoke-test mode: models trained on the
training slice, the model servers and one extender per ML variant as processes, every
scheduler on two seeds, the tables, the report and the BENCH lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BENCH_NAMES = (
    "placement_hot_share_ratio_vs_default",
    "placement_p95_cpu",
    "placement_availability",
    "placement_objective_ratio_vs_best_load_aware",
    "placement_calm_availability_delta_pct",
)


def test_quick_placement_benchmark(tmp_path: Path) -> None:
    env = {**os.environ, "HYDATIS_WORK_DIR": str(tmp_path / "work")}
    env.setdefault("HYDATIS_DATA_DIR", "")  # the embedded default when no traces are given
    out = tmp_path / "placement"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "placement.py"),
            "--quick",
            "--nodes",
            "20",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    bench = dict(
        line.split()[1:3] for line in proc.stdout.splitlines() if line.startswith("BENCH ")
    )
    assert set(bench) == set(BENCH_NAMES)
    results = json.loads((out / "results.json").read_text())
    assert set(results["levels"]) == {"calm", "hot"}
    hot = results["per_seed"]["hot"]
    # every scheduler and every ablation ran on both seeds of the hot level
    for name in ("default", "koordinator", "ml", "ml-load", "ml-agent", "ml-anomaly", "ml-nolag"):
        assert len(hot[name]["objective"]) == 2, name
    assert 0.0 <= float(bench["placement_availability"]) <= 1.0
    html = (out / "report.html").read_text()
    assert "Ablation" in html and "CDF of node CPU" in html and "heatmap" in html.lower()
