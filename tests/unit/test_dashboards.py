"""The dashboards as code: the files in infra/grafana are what the code builds, the JSON is
importable, and every series a panel reads has an exporter (or is a named gap).

Running each query against a real Prometheus holding a replay is
``tests/integration/test_dashboards_replay.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from monitoring.dashboards import (
    DASHBOARDS,
    build_all,
    panel_targets,
    render_infra,
    series_read,
    variable_queries,
)

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "infra" / "grafana"
GRAFANA_VARIABLES = {"$__rate_interval", "$__range", "$__interval"}
#: Series read by a panel that no part exports yet, or that a batch job / another service
#: exports (kept in step with tests/integration/test_dashboards_replay.py's PENDING).
EXPORTED_ELSEWHERE: set[str] = set()


@pytest.mark.parametrize("rel", sorted(render_infra()), ids=str)
def test_infra_file_is_what_the_code_builds(rel: str) -> None:
    path = GRAFANA / rel
    assert path.exists(), f"{path} missing: run `python -m monitoring.dashboards`"
    assert path.read_text() == render_infra()[rel], (
        f"{path} is stale: run `python -m monitoring.dashboards`"
    )


def test_three_dashboards_with_distinct_uids() -> None:
    models = build_all()
    assert set(models) == {"business", "ml-performance", "scheduler-operations"}
    uids = [m["uid"] for m in models.values()]
    assert len(set(uids)) == 3 and all(uid.startswith("hydatis-") for uid in uids)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_json_is_importable(name: str) -> None:
    model = build_all()[name]
    assert model["id"] is None and model["title"] and model["schemaVersion"] >= 36
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = model["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert isinstance(panel["options"], dict)
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(set(refs)) == len(refs), panel["title"]
        for t in panel["targets"]:
            assert t["expr"].strip()
            assert t["instant"] is (panel["type"] != "timeseries"), panel["title"]
            assert t["range"] is (panel["type"] == "timeseries"), panel["title"]
    # a panel's grid position stays within 24 columns
    assert all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in panels)


@pytest.mark.parametrize(
    "target", panel_targets(), ids=lambda t: f"{t.dashboard}:{t.panel}:{t.ref}"
)
def test_query_is_well_formed(target) -> None:
    expr = target.expr
    for open_, close in ("()", "{}", "[]"):
        depth = 0
        for ch in re.sub(r'"[^"]*"', "", expr):
            depth += (ch == open_) - (ch == close)
            assert depth >= 0, f"unbalanced {open_}{close}: {expr}"
        assert depth == 0, f"unbalanced {open_}{close}: {expr}"
    own = {f"${v}" for d, v, _ in variable_queries() if d == target.dashboard}
    used = set(re.findall(r"\$[a-zA-Z_]+", expr))
    assert used <= GRAFANA_VARIABLES | own, f"unknown variable in {expr}"
    assert series_read(expr), f"reads no series: {expr}"


def _registry_names(registry: CollectorRegistry) -> set[str]:
    return {s.name for fam in registry.collect() for s in fam.samples} | {
        fam.name for fam in registry.collect()
    }


def _known_series(tmp_path: Path) -> set[str]:
    """Every series name some part of the project exports."""
    from kserve import metrics as kserve_metrics  # the model servers' own histograms

    from monitoring.business import business_report, business_samples, load_costs
    from scheduler_shim.metrics import ExtenderMetrics
    from simulator.datasets import default_dataset
    from simulator.engine import SimConfig, simulate
    from simulator.metrics import summarize
    from simulator.metrics_export import ReplayRecorder
    from simulator.report import series_for_report, write_results
    from simulator.schedulers import make_scheduler
    from simulator.workload import compile_workload

    names: set[str] = {"up"}
    m = ExtenderMetrics()
    for verb in ("filter",):  # labelled families have samples once a label value exists
        m.decision_seconds.labels(verb).observe(0.001)
        m.requests.labels(verb, "200").inc()
    for metric, labels in (
        (m.fallbacks, ("stale",)),
        (m.decisions, ("prioritize", "active")),
        (m.filtered, ("hot",)),
        (m.prefetch, ("used",)),
        (m.cache_lookups, ("hit",)),
        (m.refreshes, ("ok",)),
        (m.model_errors, ("load",)),
    ):
        metric.labels(*labels).inc()
    m.refresh_seconds.observe(0.1)
    m.observe_model("load", 0.01, True)
    names |= _registry_names(m.registry)
    for hist in (kserve_metrics.PREDICT_HIST_TIME,):
        names |= {f"{hist._name}{s}" for s in ("_bucket", "_sum", "_count")}
    ds, _ = default_dataset(nodes=4, horizon_s=1800.0, seed=0, synthetic=True)
    workload = compile_workload(ds)
    rec = ReplayRecorder()
    results, series = {}, {}
    for name in ("default", "tlp"):
        r = simulate(workload, rec.wrap(name, make_scheduler(name)), seed=0, config=SimConfig())
        rec.add(name, workload, r)
        results[name], series[name] = summarize(r), series_for_report(r)
    text = rec.write(tmp_path / "x.om").path.read_text()
    names |= set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, flags=re.M))
    # a gauge family written with no sample in this small run (e.g. no eviction)
    names |= set(re.findall(r"^# TYPE (\S+) gauge$", text, flags=re.M))
    write_results(tmp_path / "sim", results, {"dataset": {"nodes": 4}, "series": series})
    report = business_report([tmp_path / "sim"], load_costs(), candidate="tlp")
    names |= {s[0] for s in business_samples(report)}
    for rules in [ROOT / "monitoring" / "alerts" / "rules" / "hydatis-rules.yaml"]:
        for group in yaml.safe_load(rules.read_text())["groups"]:
            names |= {r["record"] for r in group["rules"] if "record" in r}
    for module, cls in (
        ("monitoring.drift.metrics", "DriftMetrics"),
        ("monitoring.remediation.metrics", "RemediationMetrics"),
    ):
        try:
            mod = __import__(module, fromlist=[cls])
            names |= _family_names(getattr(mod, cls)().registry)
        except (ImportError, AttributeError, TypeError):
            continue
    return names


def _family_names(registry: CollectorRegistry) -> set[str]:
    out = set()
    for fam in registry.collect():
        if fam.type == "counter":
            out.add(f"{fam.name}_total")
        elif fam.type == "histogram":
            out |= {f"{fam.name}{s}" for s in ("_bucket", "_sum", "_count")}
        else:
            out.add(fam.name)
    return out


def test_every_series_a_panel_reads_is_exported(tmp_path: Path) -> None:
    known = _known_series(tmp_path)
    read = {n for t in panel_targets() for n in series_read(t.expr)}
    unknown = read - known - EXPORTED_ELSEWHERE
    assert not unknown, f"panels read series nothing exports: {sorted(unknown)}"


def test_configmaps_hold_the_dashboards() -> None:
    (cm,) = yaml.safe_load_all((GRAFANA / "dashboards-configmap.yaml").read_text())
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    for name, model in build_all().items():
        assert json.loads(cm["data"][f"{name}.json"]) == model
    (prov,) = yaml.safe_load_all((GRAFANA / "provisioning-configmap.yaml").read_text())
    providers = yaml.safe_load(prov["data"]["dashboards.yaml"])
    assert providers["providers"][0]["type"] == "file"
    sources = yaml.safe_load(prov["data"]["datasources.yaml"])
    assert sources["datasources"][0]["type"] == "prometheus"
