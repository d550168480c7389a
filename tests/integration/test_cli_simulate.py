"""`hydatis simulate` end to end: the table, results.json, run.json and report.html."""

from __future__ import annotations

import json

import pytest

from cli.main import main
from hydatis.dataset import save_dataset
from simulator.schedulers import BASELINES
from tests.factories import make_dataset

pytestmark = pytest.mark.integration

TIMING = {"latency_p50_ms", "latency_p99_ms", "wall_s"}


def _small_dataset(tmp_path):
    pods = [
        {
            "start": 30.0 * i,
            "end": 30.0 * i + 3600,
            "cpu": 1 + (i % 4),
            "mem": 2.0,
            "use": [(0.5 + (i % 5) * 0.6, 1.5), (1.5, 1.8), (3.0 * (i % 2), 1.9)],
        }
        for i in range(60)
    ]
    ds = make_dataset([(8, 32)] * 6 + [(16, 64)] * 2, pods, horizon_s=5400, ramp_s=600)
    return save_dataset(ds, tmp_path / "ds")


def test_simulate_writes_every_output_and_is_deterministic(tmp_path, capsys):
    path = _small_dataset(tmp_path)
    names = ",".join(BASELINES)
    for run in ("a", "b"):
        code = main(
            [
                "simulate",
                "--dataset",
                str(path),
                "--schedulers",
                names,
                "--seed",
                "3",
                "--out",
                str(tmp_path / run),
            ]
        )
        assert code == 0
    out = capsys.readouterr().out
    assert "default" in out and "availability" in out
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    assert list(a) == list(BASELINES)
    for name in BASELINES:
        assert {k: v for k, v in a[name].items() if k not in TIMING} == {
            k: v for k, v in b[name].items() if k not in TIMING
        }
    html = (tmp_path / "a" / "report.html").read_text()
    assert "Node CPU utilisation distribution" in html and "plotly" in html.lower()
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["seed"] == 3 and run["dataset"]["nodes"] == 8


def test_unknown_scheduler_is_a_clear_error(tmp_path, capsys):
    path = _small_dataset(tmp_path)
    code = main(
        [
            "simulate",
            "--dataset",
            str(path),
            "--schedulers",
            "default,nope",
            "--out",
            str(tmp_path / "x"),
        ]
    )
    assert code == 2
    assert "nope" in capsys.readouterr().out


def test_bad_dataset_names_the_table(tmp_path, capsys):
    path = _small_dataset(tmp_path)
    (path / "nodes.parquet").unlink()
    code = main(["simulate", "--dataset", str(path), "--out", str(tmp_path / "x")])
    assert code == 2
    assert "nodes" in capsys.readouterr().out


def test_synthetic_default_runs_without_the_traces(tmp_path, monkeypatch):
    monkeypatch.setenv("HYDATIS_DATA_DIR", "")
    code = main(["simulate", "--nodes", "40", "--horizon", "7200", "--out", str(tmp_path)])
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    run = json.loads((tmp_path / "run.json").read_text())
    assert sorted(results) == sorted(BASELINES)
    assert run["dataset"]["description"].startswith("embedded synthetic default")


@pytest.mark.slow
def test_demo_size_run(tmp_path):
    """The main job at full size (several minutes): what `make demo` runs."""
    code = main(["simulate", "--out", str(tmp_path)])
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert sorted(results) == sorted(BASELINES)


def test_builtin_knobs_with_a_dataset_are_refused(tmp_path, capsys):
    path = _small_dataset(tmp_path)
    code = main(["simulate", "--dataset", str(path), "--nodes", "3", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "--nodes" in capsys.readouterr().out
