"""The business report: figures, cost model, savings, sensitivity, metrics and the CLI.

Comparisons are written by hand (``results.json`` and ``run.json`` as ``hydatis simulate``
writes them) with chosen figures, so every saving can be checked against arithmetic done
here; one test runs the whole path on a real (small) simulator comparison.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cli import report as report_cli
from hydatis.errors import ConfigError
from monitoring.business import (
    business_report,
    business_samples,
    load_costs,
    write_html,
    write_json,
    write_openmetrics,
    write_prometheus_text,
)
from monitoring.business.report import _nodes_needed

H, M = 8760.0, 525_600.0


def _row(p95: float, availability: float, **extra) -> dict:
    return {
        "mean_cpu": 0.40,
        "p95_cpu": p95,
        "hot_share": 0.01,
        "availability": availability,
        "impacted_pending": 0.001,
        "pending_p95_s": 30.0,
        "evictions": 3,
        "never_placed": 0,
        **extra,
    }


def _comparison(folder: Path, rows: dict[str, dict], nodes: int = 100) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(rows))
    series = {
        n: {"time_h": [0.0, 1.0, 2.0], "pending_t": [9.0, 2.0, 4.0], "warmup_h": 1.0} for n in rows
    }
    run = {
        "dataset": {"nodes": nodes, "horizon_s": 7200.0, "description": "hand"},
        "series": series,
    }
    (folder / "run.json").write_text(json.dumps(run))
    return folder


@pytest.fixture
def costs():
    return load_costs(
        None,
        node_hourly_cost=0.5,
        unavailability_cost_per_minute=10.0,
        platform_hourly_cost=1.0,
        target_p95_utilization=0.65,
    )


@pytest.mark.parametrize(
    ("nodes", "p95", "target", "needed"),
    [
        (100, 0.65, 0.65, 100),  # at the target: as many as now
        (100, 0.78, 0.65, 120),  # exact multiple stays exact despite float noise
        (100, 0.66, 0.65, 102),  # anything above rounds up
        (100, 0.30, 0.65, 47),  # a cooler p95 needs fewer
        (3, 0.01, 0.65, 1),  # never fewer than one node
    ],
    ids=["at-target", "exact-multiple", "round-up", "fewer", "at-least-one"],
)
def test_nodes_needed(nodes, p95, target, needed) -> None:
    assert _nodes_needed(nodes, p95, target) == needed


def test_savings_follow_from_the_measured_differences_and_the_inputs(tmp_path, costs) -> None:
    rows = {"default": _row(0.78, 0.990), "ml": _row(0.65, 0.995)}
    report = business_report([_comparison(tmp_path / "a", rows)], costs)
    (s,) = report.savings
    assert s.nodes_saved == 120 - 100
    assert s.node_savings == pytest.approx(20 * 0.5 * H)
    assert s.unavailable_minutes_saved == pytest.approx(0.005 * M)
    assert s.unavailability_savings == pytest.approx(0.005 * M * 10.0)
    assert s.platform_cost == pytest.approx(1.0 * H)
    net = 20 * 0.5 * H + 0.005 * M * 10.0 - H
    assert s.net_per_year == pytest.approx(net)
    assert s.roi == pytest.approx(net / H)
    # figures: mean pending after the warm-up (hours >= 1)
    assert report.figure("ml", "pending_mean") == pytest.approx(3.0)


def test_no_difference_saves_nothing_and_costs_the_platform(tmp_path, costs) -> None:
    rows = {"default": _row(0.7, 0.99), "ml": _row(0.7, 0.99)}
    report = business_report([_comparison(tmp_path / "a", rows)], costs)
    (s,) = report.savings
    assert s.node_savings == 0 and s.unavailability_savings == 0
    assert s.net_per_year == pytest.approx(-H) and s.roi == pytest.approx(-1.0)


def test_break_even_values_zero_the_net(tmp_path, costs) -> None:
    rows = {"default": _row(0.78, 0.990), "ml": _row(0.65, 0.995)}
    folder = _comparison(tmp_path / "a", rows)
    report = business_report([folder], costs)
    net0 = report.savings[0].net_period
    assert report.break_even["node_hourly_cost"] is None  # positive even with free nodes
    for name, value in report.break_even.items():
        if value is None:  # no value >= 0 makes it 0: the sign holds down to 0
            at_zero = business_report([folder], costs.model_copy(update={name: 0.0}))
            assert math.copysign(1, at_zero.savings[0].net_period) == math.copysign(1, net0)
            continue
        again = business_report([folder], costs.model_copy(update={name: value}))
        assert again.savings[0].net_period == pytest.approx(0.0, abs=1e-6), name
    assert report.break_even["platform_hourly_cost"] == pytest.approx(1.0 + net0 / H)


def test_sensitivity_scales_one_input_at_a_time(tmp_path, costs) -> None:
    rows = {"default": _row(0.78, 0.990), "ml": _row(0.65, 0.995)}
    report = business_report([_comparison(tmp_path / "a", rows)], costs)
    by = {(r["input"], r["factor"]): r for r in report.sensitivity}
    base = report.savings[0].net_period
    assert by[("node_hourly_cost", 1.0)]["net_period"] == pytest.approx(base)
    doubled = by[("node_hourly_cost", 2.0)]["net_period"]
    assert doubled - base == pytest.approx(report.savings[0].node_savings)
    # the target changes the nodes needed too: a looser target needs fewer nodes for both
    assert ("target_p95_utilization", 2.0) not in by  # 1.3 is not a utilisation
    assert by[("target_p95_utilization", 0.5)]["value"] == pytest.approx(0.325)


def test_several_comparisons_give_a_mean_and_a_range(tmp_path, costs) -> None:
    a = _comparison(tmp_path / "a", {"default": _row(0.78, 0.99), "ml": _row(0.65, 0.99)})
    b = _comparison(tmp_path / "b", {"default": _row(0.78, 0.99), "ml": _row(0.78, 0.99)})
    report = business_report([a, b], costs)
    m = report.mean_savings()
    assert m["nodes_saved"] == 10 and m["nodes_saved_min"] == 0 and m["nodes_saved_max"] == 20


def test_fleet_nodes_scales_the_cluster(tmp_path) -> None:
    rows = {"default": _row(0.78, 0.99), "ml": _row(0.65, 0.99)}
    costs = load_costs(None, fleet_nodes=1000)
    report = business_report([_comparison(tmp_path / "a", rows)], costs)
    assert report.savings[0].nodes_saved == 1200 - 1000


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("node_hourly_cost: -1\n", "node_hourly_cost: "),
        ("node_hourly_cost: cheap\n", "node_hourly_cost: "),
        ("nodes_hourly_cost: 1\n", "nodes_hourly_cost: "),
        ("target_p95_utilization: 1.5\n", "target_p95_utilization: "),
        ("[1, 2]\n", "expected a mapping"),
        ("a: [\n", "not valid YAML"),
    ],
    ids=["negative", "not-a-number", "unknown-key", "target-above-1", "not-a-mapping", "bad-yaml"],
)
def test_bad_cost_file_is_named(tmp_path, text, match) -> None:
    path = tmp_path / "costs.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as err:
        load_costs(path)
    assert "costs.yaml" in str(err.value) or "YAML" in str(err.value)


def test_cost_file_overrides_a_subset(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("currency: EUR\nnode_hourly_cost: 0.2\n")
    costs = load_costs(path)
    defaults = load_costs()
    assert costs.currency == "EUR" and costs.node_hourly_cost == 0.2
    assert costs.platform_hourly_cost == defaults.platform_hourly_cost


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"results.json": None}, "no results.json"),
        ({"results.json": "{nope", "run.json": "{}"}, "cannot be read as JSON"),
        ({"results.json": {"default": {}}, "run.json": {"dataset": {"nodes": 3}}}, "lacks"),
        ({"results.json": {"default": _row(0.5, 0.9)}, "run.json": {}}, "dataset.nodes"),
        (
            {"results.json": {"default": _row(0.5, 0.9)}, "run.json": {"dataset": {"nodes": 3}}},
            "no candidate scheduler 'ml'",
        ),
    ],
    ids=["missing", "bad-json", "missing-figures", "no-cluster-size", "no-candidate"],
)
def test_bad_results_are_named(tmp_path, costs, files, match) -> None:
    for name, content in files.items():
        if content is not None:
            text = content if isinstance(content, str) else json.dumps(content)
            (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=match):
        business_report([tmp_path], costs)


def test_metrics_in_both_formats(tmp_path, costs) -> None:
    rows = {"default": _row(0.78, 0.990), "ml": _row(0.65, 0.995)}
    report = business_report([_comparison(tmp_path / "a", rows)], costs)
    text = write_prometheus_text(report, tmp_path / "b.prom").read_text()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    net = [
        s for s in fams["hydatis_business_savings_per_year"].samples if s.labels["item"] == "net"
    ]
    assert net[0].value == pytest.approx(report.savings[0].net_per_year, rel=1e-9)
    assert net[0].labels == {
        "candidate": "ml",
        "baseline": "default",
        "currency": "USD",
        "item": "net",
    }
    needed = {s.labels["scheduler"]: s.value for s in fams["hydatis_business_nodes_needed"].samples}
    assert needed == {"default": 120.0, "ml": 100.0}
    om = write_openmetrics(report, tmp_path / "b.om", start=1000.0, end=1300.0, step_s=60.0)
    lines = om.read_text().splitlines()
    assert lines[-1] == "# EOF"
    roi = [ln for ln in lines if ln.startswith("hydatis_business_roi_ratio{")]
    assert [int(ln.rsplit(" ", 1)[1]) for ln in roi] == [1000, 1060, 1120, 1180, 1240, 1300]
    names = {s[0] for s in business_samples(report)}
    assert all(n.startswith("hydatis_business_") for n in names)
    with pytest.raises(ConfigError, match="before it starts"):
        write_openmetrics(report, tmp_path / "x.om", start=10.0, end=0.0)


def test_html_and_json(tmp_path, costs) -> None:
    rows = {"default": _row(0.78, 0.990), "ml": _row(1.0, 0.995)}
    report = business_report([_comparison(tmp_path / "a", rows)], costs)
    page = write_html(report, tmp_path / "b.html", costs_source="mine.yaml").read_text()
    assert page.count("plotly-graph-div") == 5 and "mine.yaml" in page
    assert "unavailability_cost_per_minute" in page and "≥" in page  # capped p95 flagged
    data = json.loads(write_json(report, tmp_path / "b.json").read_text())
    assert data["comparisons"][0]["figures"]["ml"]["capped"] is True
    assert math.isclose(
        data["mean_savings"]["net_per_year"], report.savings[0].net_per_year, rel_tol=1e-12
    )


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    report_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_on_a_real_comparison(tmp_path) -> None:
    """``hydatis report business`` on what a short simulator comparison wrote."""
    from simulator.datasets import default_dataset
    from simulator.engine import SimConfig, simulate
    from simulator.metrics import summarize
    from simulator.report import series_for_report, write_results
    from simulator.schedulers import make_scheduler
    from simulator.workload import compile_workload

    ds, description = default_dataset(nodes=10, horizon_s=3600.0, seed=0, synthetic=True)
    workload = compile_workload(ds)
    results, series = {}, {}
    for name in ("default", "tlp"):
        r = simulate(workload, make_scheduler(name), seed=0, config=SimConfig(horizon_s=3600.0))
        results[name], series[name] = summarize(r), series_for_report(r)
    run = {"dataset": {"description": description, "nodes": 10, "horizon_s": 3600.0}}
    write_results(tmp_path / "sim", results, {**run, "series": series})
    costs = tmp_path / "costs.yaml"
    costs.write_text("currency: EUR\n")
    args = _cli(
        [
            "report",
            "business",
            "--results",
            str(tmp_path / "sim"),
            "--candidate",
            "tlp",
            "--costs",
            str(costs),
            "--openmetrics-out",
            str(tmp_path / "b.om"),
        ]
    )
    assert args.func(args) == 0
    out = tmp_path / "sim" / "business"
    assert {p.name for p in out.iterdir()} == {"business.html", "business.json", "business.prom"}
    data = json.loads((out / "business.json").read_text())
    assert data["costs"]["currency"] == "EUR"
    figs = data["comparisons"][0]["figures"]
    assert figs["tlp"]["p95_cpu"] == pytest.approx(results["tlp"]["p95_cpu"])
    assert (tmp_path / "b.om").read_text().endswith("# EOF\n")
    bad = _cli(["report", "business", "--results", str(tmp_path / "sim"), "--candidate", "ml"])
    with pytest.raises(ConfigError, match="no candidate scheduler 'ml'"):
        bad.func(bad)
