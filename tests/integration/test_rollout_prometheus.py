"""The rollout's evidence from a real Prometheus: kube-state-metrics pod series, the node
CPU recording rule and the extender's counters written as OpenMetrics, backfilled with
``promtool``, read back by :class:`operations.rollout.PrometheusEvidence` and split into
cohorts by the hash of each pod's UID."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from hydatis.prometheus import PrometheusClient
from operations.rollout import GateConfig, PrometheusEvidence
from scheduler_shim.service import rollout_bucket
from tests.servers import backfill_openmetrics, prometheus_server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("prometheus") is None or shutil.which("promtool") is None,
        reason="needs the prometheus and promtool binaries on PATH",
    ),
]

T0 = 1_700_000_000
END = T0 + 3600
STEP = 30
PERCENT = 10.0
# (pending seconds or None while pending, node) per pod, ML cohort then default cohort
ML_PODS = [(5, "n-hot"), (10, "n-cool"), (100, "n-cool"), (None, "")]
DEFAULT_PODS = [(2, "n-cool")] * 4


def _uids() -> tuple[list[str], list[str]]:
    ml, dflt, k = [], [], 0
    while len(ml) < len(ML_PODS) or len(dflt) < len(DEFAULT_PODS):
        uid = f"00000000-0000-4000-8000-{k:012d}"
        (ml if rollout_bucket(uid) < PERCENT else dflt).append(uid)
        k += 1
    return ml[: len(ML_PODS)], dflt[: len(DEFAULT_PODS)]


def _openmetrics() -> str:
    stamps = range(T0, END + 1, STEP)
    ml, dflt = _uids()
    sched_lines = ["# TYPE kube_pod_status_scheduled_time gauge"]
    pods = list(zip(ml, ML_PODS, strict=True)) + list(zip(dflt, DEFAULT_PODS, strict=True))
    info, created_l = [], []
    for n, (uid, (pending, node)) in enumerate(pods):
        created = T0 + 1900 + 100 * n
        for t in stamps:
            if t < created:
                continue
            info.append(
                f'kube_pod_info{{namespace="ns",pod="p{n}",uid="{uid}",node="{node}"}} 1 {t}'
            )
            created_l.append(f'kube_pod_created{{namespace="ns",pod="p{n}"}} {created} {t}')
            if pending is not None and t >= created + pending:
                sched_lines.append(
                    f'kube_pod_status_scheduled_time{{namespace="ns",pod="p{n}"}} '
                    f"{created + pending} {t}"
                )
    # a pod created before the window: not counted
    old = [
        f'kube_pod_info{{namespace="ns",pod="old",uid="{ml[0]}x",node="n-hot"}} 1 {t}'
        for t in stamps
    ]
    old_created = [f'kube_pod_created{{namespace="ns",pod="old"}} {T0} {t}' for t in stamps]
    lines = ["# TYPE kube_pod_info gauge", *info, *old]
    lines += ["# TYPE kube_pod_created gauge", *created_l, *old_created, *sched_lines]
    lines.append("# TYPE hydatis:node_cpu_utilisation:ratio_rate5m gauge")
    for node, v in (("n-hot", 0.95), ("n-cool", 0.3)):
        lines += [
            f'hydatis:node_cpu_utilisation:ratio_rate5m{{node="{node}"}} {v} {t}' for t in stamps
        ]
    # the extender: 100 active decisions a step, 1 slow (0.2 s), 5 fallbacks
    lines.append("# TYPE hydatis_extender_decision_seconds histogram")
    for k, t in enumerate(stamps):
        fast, slow = 99 * k, k
        for le, v in (("0.001", 0), ("0.002", fast), ("0.25", fast + slow), ("+Inf", fast + slow)):
            lines.append(
                f'hydatis_extender_decision_seconds_bucket{{verb="prioritize",le="{le}"}} {v} {t}'
            )
        lines.append(
            f'hydatis_extender_decision_seconds_count{{verb="prioritize"}} {fast + slow} {t}'
        )
        total = 0.002 * fast + 0.2 * slow
        lines.append(f'hydatis_extender_decision_seconds_sum{{verb="prioritize"}} {total} {t}')
    lines.append("# TYPE hydatis_extender_fallbacks counter")
    lines += [
        f'hydatis_extender_fallbacks_total{{reason="deadline"}} {5 * k} {t}'
        for k, t in enumerate(stamps)
    ]
    lines.append("# TYPE hydatis_extender_decisions counter")
    for k, t in enumerate(stamps):
        lines.append(
            f'hydatis_extender_decisions_total{{verb="prioritize",path="active"}} {100 * k} {t}'
        )
        skip = 'verb="prioritize",path="rollout_skip"'
        lines.append(f"hydatis_extender_decisions_total{{{skip}}} {900 * k} {t}")
    return _sorted_families(lines) + "# EOF\n"


def _sorted_families(lines: list[str]) -> str:
    """OpenMetrics wants each family's samples together and in time order per series."""
    out: list[str] = []
    family: list[str] = []

    def flush() -> None:
        samples = sorted(family, key=lambda s: (s.rsplit(" ", 2)[0], int(s.rsplit(" ", 1)[1])))
        out.extend(samples)
        family.clear()

    for line in lines:
        if line.startswith("# TYPE"):
            flush()
            out.append(line)
        else:
            family.append(line)
    flush()
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rollout-prom")
    src = tmp / "history.om"
    src.write_text(_openmetrics())
    backfill_openmetrics(src, tmp / "data")
    with prometheus_server(tmp / "data") as server:
        yield server.url


def test_evidence_from_prometheus(prom: str) -> None:
    cfg = GateConfig(window_s=1800.0)
    with PrometheusClient(prom) as client:
        ev = PrometheusEvidence(client.query, cfg).collect(float(END), PERCENT)
    assert ev.ml.pods == 3 and ev.default.pods == 4
    assert ev.ml.hot_share == pytest.approx(1 / 3)
    assert ev.default.hot_share == 0.0
    # placed ML pods' lives since creation; the 100 s pod waited 40 s past the grace
    lives = [END - (T0 + 1900 + 100 * n) for n in range(3)]
    assert ev.ml.availability == pytest.approx(1 - 40 / sum(lives))
    assert ev.default.availability == 1.0
    assert ev.ml.pending_p95_s == pytest.approx(np.percentile([5, 10, 100], 95))
    assert ev.default.pending_p95_s == pytest.approx(2.0)
    assert 0.001 < ev.decision_p99_s <= 0.25
    assert ev.fallback_rate == pytest.approx(0.05, abs=1e-3)
    assert not math.isnan(ev.decision_p99_s)
