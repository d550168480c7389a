"""Done-when of the alerting path: a real Prometheus holding a replay with an injected hot
node, a real Alertmanager, and the remediation webhook as a process.

The replay's history is backfilled with ``promtool`` (it shows the node hot for hours).
Backfilled data ends hours in the past and Prometheus evaluates rules at wall-clock time,
so history never fires an alert (STACK.md section 10): the replay's *current* values are
served by the replay's own API server at ``/metrics`` (node_exporter and
kube-state-metrics names), which Prometheus scrapes every second, with the rules rendered
with ``for: 8s`` and 5-second rate windows. The alert fires, Alertmanager delivers it,
the service confirms it in Prometheus, plans the cordon and drain against the replay's
Kubernetes API in dry-run, and audits it; Alertmanager's repeated delivery is recognised
and not acted on again.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from hydatis.prometheus import PrometheusClient
from monitoring.alerts.render import alertmanager_config, dump_yaml, rule_groups
from simulator.engine import simulate
from simulator.history import history_dataset
from simulator.k8s_api import ReplayApiServer, ReplayCluster
from simulator.openmetrics import write_openmetrics
from simulator.schedulers import make_scheduler
from simulator.synthetic import generate_synthetic
from simulator.workload import compile_workload
from tests.servers import backfill_openmetrics, free_port, running_process

BINARIES = ("prometheus", "promtool", "prometheus-alertmanager")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        any(shutil.which(b) is None for b in BINARIES),
        reason="needs prometheus, promtool and prometheus-alertmanager on PATH (Debian: "
        "apt-get install prometheus prometheus-alertmanager)",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
NODES, HOURS, HOT, STEP = 10, 3, 4, 30.0
HOT_FROM_S = 3600.0


def _replay(tmp: Path) -> tuple[ReplayCluster, str, object]:
    """A 3-hour replay of a 10-node synthetic cluster whose node 4 gets a runaway
    non-pod process (0.8 of its CPU) from the first hour on."""
    ds = generate_synthetic(nodes=NODES, horizon_s=HOURS * 3600, seed=2)
    workload = compile_workload(ds)
    steps = int(HOURS * 3600 / STEP) + 1
    bg_cpu = np.zeros((steps, NODES), dtype=np.float32)
    bg_cpu[int(HOT_FROM_S / STEP) :, HOT] = 0.8 * workload.cap_cpu[HOT]
    workload.bg_cpu, workload.bg_mem, workload.bg_step = bg_cpu, np.zeros_like(bg_cpu), STEP
    owners = dict(zip(ds.pods["pod"], ds.pods["workload"], strict=True))
    cluster = ReplayCluster(workload, owners=owners)
    result = simulate(workload, make_scheduler("default"), seed=0, control=cluster)
    history = history_dataset(workload, result, owners=owners)
    export = write_openmetrics(history, tmp / "replay.om", end_before=4 * 3600)
    backfill_openmetrics(str(export.path), str(tmp / "data"))
    return cluster, workload.node_names[HOT], export


def _wait(what: str, check, timeout: float = 90.0, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _sample(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not in the metrics")


def _records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_hot_node_alert_reaches_remediation_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster, hot, export = _replay(tmp_path)
    prom_port, am_port, rem_port = free_port(), free_port(), free_port()
    audit = tmp_path / "audit.jsonl"
    rules = tmp_path / "rules.yaml"
    # ``rate(x[5m])`` divides by the whole window: over a series scraped for seconds it
    # reads near 0 (every node would look busy), so these rules use 5-second windows
    # and a ``for:`` longer than one (promtool tests the real windows and durations)
    rules.write_text(dump_yaml(rule_groups(for_="8s", interval="1s", rate_window="5s")))

    with ReplayApiServer(cluster) as replay_api:
        prom_yml = tmp_path / "prometheus.yml"
        prom_yml.write_text(
            dump_yaml(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(rules)],
                    "alerting": {
                        "alertmanagers": [
                            {"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}
                        ]
                    },
                    "scrape_configs": [
                        {
                            "job_name": "replay",
                            "static_configs": [{"targets": [f"127.0.0.1:{replay_api.port}"]}],
                        }
                    ],
                }
            )
        )
        prom_url = f"http://127.0.0.1:{prom_port}"
        prometheus = [
            "prometheus",
            f"--config.file={prom_yml}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--storage.tsdb.retention.time=100y",
        ]
        rem_url = f"http://127.0.0.1:{rem_port}"
        remediation = [
            sys.executable,
            "-m",
            "monitoring.remediation",
            "--port",
            str(rem_port),
            "--audit-log",
            str(audit),
            "--prometheus-url",
            prom_url,
            "--kube-api",
            replay_api.url,
            "--log-level",
            "info",
        ]
        am_yml = tmp_path / "alertmanager.yml"
        am_yml.write_text(
            dump_yaml(
                alertmanager_config(
                    f"{rem_url}/v1/alerts",
                    group_wait="1s",
                    group_interval="1s",
                    repeat_interval="3s",
                )
            )
        )
        alertmanager = [
            "prometheus-alertmanager",
            f"--config.file={am_yml}",
            f"--storage.path={tmp_path / 'am'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ]
        # the service process imports this checkout's packages
        monkeypatch.setenv(
            "PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
        )
        with (
            running_process(
                prometheus,
                ready_url=f"{prom_url}/-/ready",
                url=prom_url,
                port=prom_port,
                log=tmp_path / "prometheus.log",
            ),
            running_process(
                remediation,
                ready_url=f"{rem_url}/readyz",
                url=rem_url,
                port=rem_port,
                log=tmp_path / "remediation.log",
                timeout=60,
            ),
            running_process(
                alertmanager,
                ready_url=f"http://127.0.0.1:{am_port}/-/ready",
                url=f"http://127.0.0.1:{am_port}",
                port=am_port,
                log=tmp_path / "alertmanager.log",
            ),
        ):
            # the backfilled history: node HOT above 75 % for hours, hours ago
            with PrometheusClient(prom_url) as client:
                idle = f'node_cpu_seconds_total{{mode="idle",node="{hot}"}}'
                series = client.query_range(
                    f"1 - avg by (node) (rate({idle}[5m]))",
                    export.first + HOT_FROM_S + 600,
                    export.last,
                    60,
                )
            assert len(series) == 1
            assert (series[0].values > 0.75).mean() > 0.95
            assert series[0].timestamps[-1] - series[0].timestamps[0] > 1800

            def decided():
                return [
                    r
                    for r in _records(audit)
                    if r["alert"] == "HydatisNodeCPUHot" and r["labels"].get("node") == hot
                ]

            first = _wait("the hot-node decision", decided)[0]
            repeats = _wait(
                "a repeated delivery",
                lambda: [r for r in decided() if r["result"] == "duplicate"],
                timeout=60,
            )
            metrics = httpx.get(f"{rem_url}/metrics").text

    # only the injected hot node fired (the others run well under 75 %)
    hot_alerts = {r["labels"]["node"] for r in _records(audit) if r["alert"] == "HydatisNodeCPUHot"}
    assert hot_alerts == {hot}
    # the right action, decided in dry-run against the replay's API, and audited
    assert (first["action"], first["target"], first["result"]) == (
        "cordon_drain",
        hot,
        "dry_run",
    )
    assert first["dry_run"] is True
    assert first["reason"].startswith("would cordon and evict:")
    assert first["labels"]["severity"] == "warning"
    planned = first["details"]["evict"]
    on_hot = {f"default/{cluster.workload.pods[i].name}" for i in cluster.pods_on(HOT).tolist()}
    assert planned and set(planned) <= on_hot
    assert first["details"]["pool"] == {"name": "default", "size": NODES, "cordoned": 0, "cap": 1}
    # a repeated delivery did not repeat the action
    assert all(r["key"] == first["key"] for r in repeats)
    acted = [r for r in decided() if r["result"] != "duplicate" and r["status"] == "firing"]
    assert len(acted) == 1
    # dry-run: the replay's API saw reads only
    methods = {r.method for r in cluster.requests if r.path.startswith("/api")}
    assert methods == {"GET"}
    assert not cluster.unschedulable.any()
    dry_runs = [r for r in _records(audit) if r["result"] == "dry_run"]
    counted = _sample(
        metrics, 'hydatis_remediation_actions_total{action="cordon_drain",result="dry_run"}'
    )
    assert counted == sum(r["action"] == "cordon_drain" for r in dry_runs) >= 1
    assert _sample(metrics, "hydatis_remediation_duplicate_deliveries_total") >= len(repeats)
