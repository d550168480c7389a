"""``hydatis drift check`` end to end, as a process: a history with a known change, a load
predictor on disk, the verdict per kind, Evidently's report with the calibrated
thresholds, the state carried to the next check, retraining started through a harmless
command exactly once, and the metrics pushed to a real Pushgateway that a real
Prometheus scrapes."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from hydatis.dataset import ClusterDataset, save_dataset
from hydatis.features import node_features, node_labels
from hydatis.models.load_predictor import LoadPredictor
from monitoring.drift.inject import scale_load
from monitoring.drift.synthetic import synthetic_history
from tests.servers import free_port, running_process

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_UNTIL = "2024-01-04T00:00:00Z"
CHANGE_AT = pd.Timestamp("2024-01-04T06:00:00Z")
CONFIG = """\
features: [cpu_util, mem_util, cpu_mean_15m, cpu_std_15m, cpu_mean_1h, mem_mean_1h]
persistence_windows: 2
"""


def drift_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``hydatis drift ...`` (through ``python -m cli.drift``) from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "cli.drift", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def recorder(marker: Path) -> str:
    code = "import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"
    return shlex.join([sys.executable, "-c", code, str(marker)])


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A 5-day history (level x1.5 from day 4, 06:00), a copy without the change, the
    load predictor fitted on the first two days, and a settings file."""
    root = tmp_path_factory.mktemp("drift")
    base = synthetic_history(nodes=6, days=5, step_s=300, seed=0)
    changed = scale_load(base, CHANGE_AT, 1.5)
    save_dataset(changed, root / "changed")
    nm = base.node_metrics
    for name, keep in (
        ("history", nm["ts"] < pd.Timestamp(REFERENCE_UNTIL)),
        ("recent", nm["ts"] >= pd.Timestamp("2024-01-03T12:00:00Z")),  # overlaps: deduplicated
    ):
        part = ClusterDataset(base.nodes, nm[keep.to_numpy()], base.pods, base.pod_usage, {})
        save_dataset(part, root / name)
    feats, labels = node_features(base), node_labels(base)
    early = feats["event_timestamp"] < pd.Timestamp("2024-01-03T00:00:00Z")
    model = LoadPredictor(
        n_estimators=20, objective="reg:squarederror", early_stopping_rounds=None, n_jobs=1
    )
    model.fit(feats[early.to_numpy()], labels)
    model.save(root / "model")
    (root / "drift.yaml").write_text(CONFIG)
    return {"root": root}


def check_args(
    world, dataset: str, out: Path, *extra: str, current: str | None = None
) -> list[str]:
    root = world["root"]
    when = ["--current", str(root / current)] if current else ["--reference-until", REFERENCE_UNTIL]
    return [
        "check",
        "--dataset",
        str(root / dataset),
        *when,
        "--validation-share",
        "0.5",
        "--model",
        str(root / "model"),
        "--config",
        str(root / "drift.yaml"),
        "--out",
        str(out),
        *extra,
    ]


def test_change_is_detected_reported_and_retrains_once(world):
    root = world["root"]
    out, marker = root / "out-changed", root / "retrained.json"
    command = recorder(marker) + " --dataset {dataset} --features {features} --kinds {kinds}"
    proc = drift_cli(
        *check_args(world, "changed", out, "--retrain-command", command, "--wait-retraining")
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["drift"] is True
    assert verdict["windows_checked"] == 48  # days 4 and 5, hour by hour
    kinds = verdict["kinds"]
    assert kinds["data"]["drift"] and kinds["target"]["drift"]
    assert kinds["data"]["alarm_since"] >= CHANGE_AT.isoformat()
    assert kinds["performance"]["status"] in ("ok", "drift", "drifted")
    for kind in ("data", "prediction", "performance", "target"):
        assert kind in kinds and "status" in kinds[kind]
    # retraining ran the configured command once, with the check's inputs
    args = json.loads(marker.read_text())
    assert args[:2] == ["--dataset", str(root / "changed")]
    assert args[2:4] == ["--features", str(out / "features")]
    assert "data" in args[5].split(",")
    assert verdict["retraining"]["started"] and verdict["retraining"]["returncode"] == 0
    for name in ("report.html", "report.json", "summary.html", "drift.prom", "state.json"):
        assert (out / name).stat().st_size > 0, name
    assert 'hydatis_drift_detected{kind="data"} 1.0' in (out / "drift.prom").read_text()
    # Evidently's own report of the latest window agrees with the verdict's scores
    report = json.loads((out / "report.json").read_text())
    evidently = {
        m["config"]["column"]: (m["value"], m["config"]["threshold"])
        for m in report["metrics"]
        if m["config"].get("type", "").endswith("ValueDrift")
    }
    for col in kinds["data"]["top_columns"]:
        value, threshold = evidently[col["column"]]
        assert value == pytest.approx(col["score"], rel=1e-4)
        assert threshold == pytest.approx(col["threshold"], rel=1e-4)

    # the next check finds no new window, keeps the alarm, and does not retrain again
    marker.unlink()
    again = drift_cli(
        *check_args(
            world,
            "changed",
            out,
            "--retrain-command",
            command,
            "--calibration",
            str(out / "calibration.json"),
            "--no-report",
            "--fail-on-drift",
        )
    )
    assert again.returncode == 3, again.stdout + again.stderr
    second = json.loads((out / "verdict.json").read_text())
    assert second["windows_checked"] == 0 and second["drift"] is True
    assert not second["retraining"]["started"]
    assert "cooldown" in second["retraining"]["reason"]
    assert not marker.exists()


def test_no_change_no_alarm_with_newer_data_from_another_directory(world):
    out = world["root"] / "out-unchanged"
    args = check_args(world, "history", out, "--no-report", "--no-retrain", current="recent")
    proc = drift_cli(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["drift"] is False
    assert verdict["retraining"]["started"] is False
    # the reference ends where --dataset ends; the monitored days come from --current
    assert verdict["first_window_start"] == "2024-01-04T00:00:00+00:00"
    assert verdict["windows_checked"] == 48
    assert (out / "dataset" / "meta.json").exists()  # the merged data retraining would read


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reference-until", "2023-01-01"], "the reference must end inside the data"),
        (["--reference-until", "not a time"], "--reference-until: not a time"),
        (["--model", "/nonexistent/model"], "neither a directory"),
    ],
    ids=["reference-outside", "bad-time", "bad-model"],
)
def test_bad_input_is_named(world, tmp_path, args, message):
    base = check_args(world, "changed", tmp_path / "out")
    # later flags win in argparse
    proc = drift_cli(*base, *args, "--no-report", "--no-retrain", timeout=300)
    assert proc.returncode == 2
    assert message in " ".join(proc.stdout.split())


def test_missing_dataset_is_named(tmp_path):
    proc = drift_cli("check", "--dataset", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "not found" in proc.stdout


@pytest.mark.skipif(
    shutil.which("prometheus-pushgateway") is None or shutil.which("prometheus") is None,
    reason="needs prometheus-pushgateway and prometheus (apt-get install prometheus "
    "prometheus-pushgateway)",
)
def test_metrics_reach_prometheus_through_a_pushgateway(world, tmp_path):
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    with running_process(
        ["prometheus-pushgateway", f"--web.listen-address=127.0.0.1:{port}"],
        ready_url=f"{gateway}/-/ready",
        url=gateway,
        port=port,
        log=tmp_path / "pushgateway.log",
    ):
        out = tmp_path / "out"
        proc = drift_cli(
            *check_args(
                world, "changed", out, "--no-report", "--no-retrain", "--pushgateway", gateway
            )
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        pushed = httpx.get(f"{gateway}/metrics", timeout=5).text
        assert 'hydatis_drift_detected{instance="",job="hydatis-drift",kind="data"} 1' in pushed

        prom_port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: pushgateway\n"
            "    honor_labels: true\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        )
        prom = f"http://127.0.0.1:{prom_port}"
        with running_process(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            ready_url=f"{prom}/-/ready",
            url=prom,
            port=prom_port,
            log=tmp_path / "prometheus.log",
        ):
            query = 'hydatis_drift_detected{kind="data",job="hydatis-drift"}'
            deadline = time.monotonic() + 30
            result: list = []
            while time.monotonic() < deadline and not result:
                body = httpx.get(f"{prom}/api/v1/query", params={"query": query}, timeout=5)
                result = body.json()["data"]["result"]
                time.sleep(0.5)
            assert result and float(result[0]["value"][1]) == 1.0
            scores = httpx.get(
                f"{prom}/api/v1/query", params={"query": "hydatis_drift_score"}, timeout=5
            ).json()["data"]["result"]
            assert {r["metric"]["kind"] for r in scores} >= {"data", "target"}


def test_unreachable_pushgateway_is_a_named_error_after_retries(world, tmp_path):
    gateway = f"http://127.0.0.1:{free_port()}"
    out = tmp_path / "out"
    proc = drift_cli(
        *check_args(world, "changed", out, "--no-report", "--no-retrain", "--pushgateway", gateway)
    )
    assert proc.returncode == 2
    text = " ".join(proc.stdout.split())
    assert f"Pushgateway {gateway} unreachable after 3 tries" in text
    assert (out / "verdict.json").exists()  # the results are not lost
