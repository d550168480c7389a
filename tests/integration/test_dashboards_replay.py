"""Every dashboard panel's queries against a real Prometheus that holds a replay.

A short comparison is replayed, written as metrics (``simulator.metrics_export``: the raw
cluster names plus the per-scheduler series), the business report is computed from its
``results.json`` and exported too, both files are backfilled with ``promtool tsdb
create-blocks-from openmetrics``, a real Prometheus is started on them, the project's
recording rules (``monitoring/alerts/rules``) are backfilled over the replay with
``promtool tsdb create-blocks-from rules``, Prometheus is restarted to load them, and then
each panel's query runs as Grafana would run it (range or instant, its variables
substituted). A panel with no data fails.

The default pass covers the panels whose data a replay itself produces (cluster, replay,
business); the ``slow`` test replays the ML scheduler against the real extender and model
servers, scraping their ``/metrics`` during the replay, and covers the services' panels.
Panels whose series no part exports in a replay yet are strict ``xfail``s naming what
must export them: they start failing (XPASS) the day the series exist.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from monitoring.business import business_report, load_costs
from monitoring.business import write_openmetrics as write_business_openmetrics
from monitoring.dashboards import PanelTarget, panel_targets, series_read, variable_queries
from simulator.datasets import default_dataset
from simulator.engine import SimConfig, simulate
from simulator.metrics import HOT_THRESHOLD, summarize
from simulator.metrics_export import ReplayMetricsExport, ReplayRecorder, ml_stack_targets
from simulator.report import series_for_report, write_results
from simulator.schedulers import make_scheduler
from simulator.workload import compile_workload
from tests.servers import backfill_openmetrics, prometheus_server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("prometheus") is None or shutil.which("promtool") is None,
        reason="needs the prometheus and promtool binaries on PATH (Debian: apt-get install "
        "prometheus)",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
RULE_FILES = [ROOT / "monitoring" / "alerts" / "rules" / "hydatis-rules.yaml"]
NODES, HORIZON_S, STEP_S = 30, 3 * 3600.0, 30.0
#: Grafana's $__rate_interval for a 30 s scrape is max(4 x scrape, interval + scrape).
RATE_INTERVAL = "2m"
QUERY_STEP_S = 60.0
#: Series that no part of the project exports during a replay yet -> who must.
PENDING = {
    "hydatis_drift_": "the drift check, which a replay does not run",
    "hydatis_remediation_": "the remediation service, which a replay does not run",
}
#: Labelled counters that appear only once incremented; the panels read them as 0 beside
#: a series that exists. Empty: the extender creates its counters' label values at 0 at
#: start (``ExtenderMetrics.init_labels``), so a healthy replay shows 0, not nothing.
MAY_BE_ABSENT: set[str] = set()
REPLAY_SOURCES = ("cluster", "replay", "business")


# --------------------------------------------------------------------------- helpers


def _run(argv: Sequence[str]) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"{argv[:4]} failed:\n{proc.stderr[-3000:]}"


def _replay(
    tmp: Path, schedulers: dict[str, object], recorder: ReplayRecorder
) -> tuple[Path, ReplayMetricsExport, dict[str, float]]:
    """Replay each scheduler on one workload; write results.json/run.json like
    ``hydatis simulate`` and the metrics like ``--metrics-out``. Also return each run's
    share of hot node-time after the first step (what ``increase`` over the whole export
    measures), computed from the run itself."""
    ds, description = default_dataset(nodes=NODES, horizon_s=HORIZON_S, seed=0, synthetic=True)
    workload = compile_workload(ds)
    config = SimConfig(step_s=STEP_S, horizon_s=HORIZON_S)
    owners = dict(zip(ds.pods["pod"], ds.pods["workload"], strict=True))
    results, series, hot = {}, {}, {}
    for name, sched in schedulers.items():
        result = simulate(workload, recorder.wrap(name, sched), seed=0, config=config)
        recorder.add(name, workload, result, owners=owners)
        results[name], series[name] = summarize(result), series_for_report(result)
        hot[name] = float((result.node_cpu[1:].astype("float64") > HOT_THRESHOLD).mean())
    run = {
        "seed": 0,
        "dataset": {
            "description": description,
            "nodes": workload.n_nodes,
            "pods": workload.n_pods,
            "horizon_s": HORIZON_S,
        },
        "series": series,
    }
    out = tmp / "sim"
    write_results(out, results, run)
    export = recorder.write(tmp / "replay.om", attribute_interval_s=120.0)
    return out, export, hot


def _backfill(files: Sequence[Path], data: Path) -> None:
    for f in files:
        backfill_openmetrics(f, data)


def _record_rules(url: str, start: float, end: float, out: Path) -> bool:
    """Backfill the project's recording rules over [start, end]; True if any ran."""
    if not RULE_FILES:
        return False
    argv = [
        "promtool",
        "tsdb",
        "create-blocks-from",
        "rules",
        f"--url={url}",
        f"--start={int(start)}",
        f"--end={int(end) + 1}",
        f"--output-dir={out}",
        "--eval-interval=30s",
        "--quiet",
        *map(str, RULE_FILES),
    ]
    _run(argv)
    return True


def _substitute(expr: str, range_s: float) -> str:
    return (
        expr.replace("$__rate_interval", RATE_INTERVAL)
        .replace("$__range", f"{int(range_s)}s")
        .replace("$__interval", f"{int(QUERY_STEP_S)}s")
        .replace("$scheduler", ".*")
    )


def _query(url: str, target: PanelTarget, first: float, last: float) -> tuple[bool, str]:
    """Run one query as Grafana would; (any finite value?, the query sent)."""
    expr = _substitute(target.expr, last - first)
    if target.instant:
        params = {"query": expr, "time": f"{last:.3f}"}
        resp = httpx.get(f"{url}/api/v1/query", params=params, timeout=60)
    else:
        params = {
            "query": expr,
            "start": f"{first + 600:.3f}",
            "end": f"{last:.3f}",
            "step": f"{QUERY_STEP_S:g}",
        }
        resp = httpx.get(f"{url}/api/v1/query_range", params=params, timeout=60)
    body = resp.json()
    assert resp.status_code == 200 and body["status"] == "success", (
        f"{target.dashboard} / {target.panel}: the query is refused: {body.get('error')}\n{expr}"
    )
    data = body["data"]["result"]
    points = [v for s in data for _, v in ([s["value"]] if "value" in s else s["values"])]
    return any(math.isfinite(float(v)) for v in points), expr


def _check_panel(url: str, targets: Sequence[PanelTarget], first: float, last: float) -> None:
    """A panel passes when every query is accepted, reads only series Prometheus has,
    and at least one query has data (a query may be legitimately empty, e.g. a break-even
    that does not exist, as long as the panel shows something)."""
    known = set(httpx.get(f"{url}/api/v1/label/__name__/values", timeout=30).json()["data"])
    results = [_query(url, t, first, last) for t in targets]
    name = f"{targets[0].dashboard} / {targets[0].panel}"
    for t in targets:
        missing = series_read(t.expr) - known - MAY_BE_ABSENT
        assert not missing, f"{name} ({t.ref}) reads series that are not there: {missing}"
    assert any(ok for ok, _ in results), f"{name} shows no data:\n" + "\n".join(
        q for _, q in results
    )


def _params(sources: Sequence[str]) -> list:
    panels: dict[tuple[str, str], list[PanelTarget]] = {}
    for t in panel_targets():
        if t.source in sources:
            panels.setdefault((t.dashboard, t.panel), []).append(t)
    out = []
    for (dash, title), targets in panels.items():
        owners = [who for name, who in PENDING.items() for t in targets if name in t.expr]
        marks = (
            [pytest.mark.xfail(strict=True, reason=f"no data until exported by {owners[0]}")]
            if owners
            else []
        )
        out.append(pytest.param(targets, marks=marks, id=f"{dash}:{title}"))
    return out


class _Replay:
    def __init__(self, url: str, export: ReplayMetricsExport, hot: dict[str, float]) -> None:
        self.url, self.export, self.hot = url, export, hot
        self.first, self.last = export.first, export.last


@contextmanager
def _prometheus_with(
    tmp: Path, files: Sequence[Path], export: ReplayMetricsExport, hot: dict[str, float]
) -> Iterator[_Replay]:
    """Backfill ``files``, start Prometheus, backfill the recording rules from it, and
    restart it so it loads their blocks: yield the running replay."""
    data, rules_out = tmp / "data", tmp / "rules-blocks"
    _backfill(files, data)
    with prometheus_server(data) as prom:
        _record_rules(prom.url, export.first, export.last, rules_out)
    for block in sorted(rules_out.glob("*")) if rules_out.exists() else []:
        shutil.move(str(block), str(data / block.name))
    with prometheus_server(data) as prom:
        yield _Replay(prom.url, export, hot)


# --------------------------------------------------------------------------- default pass


@pytest.fixture(scope="module")
def replay(tmp_path_factory) -> Iterator[_Replay]:
    tmp = tmp_path_factory.mktemp("dash")
    recorder = ReplayRecorder()
    scheds = {"default": make_scheduler("default"), "tlp": make_scheduler("tlp")}
    results_dir, export, hot = _replay(tmp, scheds, recorder)
    report = business_report([results_dir], load_costs(), candidate="tlp", baseline="default")
    business = write_business_openmetrics(
        report, tmp / "business.om", start=export.first, end=export.last, step_s=60.0
    )
    with _prometheus_with(tmp, [export.path, business], export, hot) as running:
        yield running


@pytest.mark.parametrize("targets", _params(REPLAY_SOURCES))
def test_panel_shows_data_on_a_replay(replay: _Replay, targets: list[PanelTarget]) -> None:
    _check_panel(replay.url, targets, replay.first, replay.last)


@pytest.mark.parametrize(("dashboard", "var", "query"), variable_queries())
def test_variable_has_values(replay: _Replay, dashboard: str, var: str, query: str) -> None:
    metric, label = query.removeprefix("label_values(").removesuffix(")").split(", ")
    resp = httpx.get(
        f"{replay.url}/api/v1/label/{label}/values",
        params={"match[]": metric, "start": replay.first, "end": replay.last},
        timeout=30,
    )
    assert sorted(resp.json()["data"]) == ["default", "tlp"], f"{dashboard} ${var}"


def test_recording_rules_were_loaded(replay: _Replay) -> None:
    if not RULE_FILES:
        pytest.skip("no recording rules in monitoring/alerts/rules yet")
    resp = httpx.get(
        f"{replay.url}/api/v1/query",
        params={"query": "count(hydatis:node_cpu_utilisation:ratio_rate5m)", "time": replay.last},
        timeout=30,
    )
    (sample,) = resp.json()["data"]["result"]
    assert int(float(sample["value"][1])) == NODES


def test_replay_hot_node_time_equals_the_simulators(replay: _Replay) -> None:
    """The business dashboard's hot node-time over the whole export equals the share the
    run itself recorded (same steps), for every scheduler."""
    span = int(replay.last - replay.first) + 30
    cpu = "hydatis_sim_node_cpu_utilization_ratio"
    expr = (
        f'1 - sum by (scheduler) (increase({cpu}_bucket{{le="0.85"}}[{span}s])) / '
        f"sum by (scheduler) (increase({cpu}_count[{span}s]))"
    )
    resp = httpx.get(
        f"{replay.url}/api/v1/query", params={"query": expr, "time": replay.last}, timeout=30
    )
    got = {s["metric"]["scheduler"]: float(s["value"][1]) for s in resp.json()["data"]["result"]}
    assert got == pytest.approx(replay.hot, abs=1e-9)


# --------------------------------------------------------------------------- slow: ML stack


@pytest.fixture(scope="module")
def ml_replay(tmp_path_factory) -> Iterator[_Replay]:
    from cli.ml_stack import ml_stack
    from simulator.extender import ExtenderScheduler
    from simulator.node_state import scheduler_context
    from tests.model_fixtures import fit_tiny_models

    tmp = tmp_path_factory.mktemp("dash-ml")
    tiny = fit_tiny_models(tmp / "models")
    models = {"load": tiny["load"], "anomaly": tiny["anomaly"], "placement": tiny["agent"]}
    ds, _ = default_dataset(nodes=NODES, horizon_s=HORIZON_S, seed=0, synthetic=True)
    with ml_stack(models=models, use_registry=False, out_dir=tmp / "stack") as stack:
        recorder = ReplayRecorder(targets={"ml": ml_stack_targets(stack.url, stack.model_urls)})
        scheds = {
            "default": make_scheduler("default"),
            "ml": ExtenderScheduler(url=stack.url, **scheduler_context(ds)),
        }
        results_dir, export, hot = _replay(tmp, scheds, recorder)
    assert export.subject == "ml" and "hydatis-shim" in export.scraped_jobs
    report = business_report([results_dir], load_costs())
    business = write_business_openmetrics(
        report, tmp / "business.om", start=export.first, end=export.last, step_s=60.0
    )
    with _prometheus_with(tmp, [export.path, business], export, hot) as running:
        yield running


@pytest.mark.slow
@pytest.mark.parametrize("targets", _params((*REPLAY_SOURCES, "services")))
def test_every_panel_shows_data_on_an_ml_replay(
    ml_replay: _Replay, targets: list[PanelTarget]
) -> None:
    _check_panel(ml_replay.url, targets, ml_replay.first, ml_replay.last)
