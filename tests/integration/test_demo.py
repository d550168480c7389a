"""``hydatis demo`` end to end (slow: minutes): the training pipeline on the trace, the
model servers and the extender, the held-out replay with the ML scheduler and every
baseline, and the report. On the real composite trace when the data directory exists,
and on the embedded synthetic default, as on a fresh clone without it."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from cli import demo
from hydatis.config import data_dir

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _run_demo(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hydatis")
    sub = parser.add_subparsers(dest="command", required=True)
    demo.add_parser(sub).set_defaults(func=demo.run)
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize("source", ["real", "synthetic"])
def test_demo_compares_the_ml_scheduler_with_every_baseline_on_the_held_out_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    if source == "real" and data_dir() is None:
        pytest.skip("no data directory: the real composite trace is not here")
    if source == "synthetic":
        monkeypatch.setenv("HYDATIS_DATA_DIR", "")
    monkeypatch.setenv("HYDATIS_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    repo = tmp_path / "feature_repo"
    shutil.copytree(
        ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("data", "__pycache__")
    )
    monkeypatch.chdir(tmp_path)  # the demo's default Feast repo is ./feature_repo
    out = tmp_path / "demo"
    assert _run_demo(["demo", "--out", str(out)]) == 0

    results = json.loads((out / "results.json").read_text())
    assert list(results) == ["ml", *demo.BASELINES]
    assert results["ml"]["placements"] > 0
    run = json.loads((out / "run.json").read_text())
    assert run["split"][-1] == {
        "part": "held-out",
        "trace_time": "[16 h, 24 h)",
        "use": run["split"][-1]["use"],
    }
    assert run["dataset"]["warmup_s"] == demo.WARMUP_S
    stats = run["scheduler_stats"]["ml"]
    assert stats["filter_calls"] > 0 and stats.get("filter_errors", 0) == 0
    assert sorted(m["kind"] for m in run["models"]) == ["anomaly", "load", "placement"]
    html = (out / "report.html").read_text()
    assert "<tr><th>ml</th>" in html
    for heading in ("How this run was made", "The models' evaluation", "What each number means"):
        assert heading in html
    expected = "synthetic" if source == "synthetic" else "real composite trace"
    assert expected in run["dataset"]["description"]
    # the operations reports: the business report on this comparison; the forecast and
    # the drift check on the 16 h history, too short for either (each says what it needs)
    ops = {o["name"]: o for o in run["operations"]}
    assert list(ops) == ["business", "forecast", "drift"]
    assert ops["business"]["status"] == "ok", ops["business"]["reason"]
    assert (out / "business" / "business.html").is_file()
    assert ops["forecast"]["status"] == "too short"
    assert "24h: needs 4 d of history" in ops["forecast"]["reason"]
    assert ops["drift"]["status"] == "too short" and "calendar day" in ops["drift"]["reason"]
    assert "<h2>Operations reports</h2>" in html
    assert "<a href='business/business.html'>" in html
