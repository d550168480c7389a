"""Drift as Prometheus metrics (``prometheus-client``), for the alert rules and dashboards.

All gauges describe the latest window checked:

- ``hydatis_drift_score{kind,feature}``: each column's statistic (Evidently's for the
  data, prediction and target kinds; the Page-Hinkley statistic for performance);
- ``hydatis_drift_threshold{kind,feature}``: its calibrated effective threshold;
- ``hydatis_drift_kind_score{kind}``: the kind's score (drifted above 1);
- ``hydatis_drift_window_drifted{kind}``: 1 when the latest window was drifted;
- ``hydatis_drift_consecutive_windows{kind}``: drifted windows in a row;
- ``hydatis_drift_detected{kind}``: 1 while the kind is in drift (K windows in a row);
- ``hydatis_drift_reference_false_alarm_ratio{kind}``: the rule's rate on the reference;
- ``hydatis_drift_last_window_end_timestamp_seconds``: end of the latest window checked;
- ``hydatis_drift_windows_checked_total``: windows checked;
- ``hydatis_drift_retraining_triggers_total{result}``: retraining starts (``started``,
  ``failed``).

A check is a batch job: :meth:`DriftMetrics.write_textfile` writes the node-exporter
textfile format and :meth:`DriftMetrics.push` sends them to a Pushgateway; a long-running
process can serve its own registry instead.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import generate_latest, push_to_gateway, write_to_textfile

from monitoring.drift.calibrate import Calibration
from monitoring.drift.detector import DriftState, WindowResult
from monitoring.drift.trigger import TriggerResult

__all__ = ["DEFAULT_JOB", "DriftMetrics"]

DEFAULT_JOB = "hydatis-drift"


class DriftMetrics:
    """The drift gauges and counters, in their own registry (or a given one)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.score = Gauge(
            "hydatis_drift_score",
            "Drift statistic of a column in the latest window (Evidently's per-column "
            "statistic; Page-Hinkley for performance).",
            ["kind", "feature"],
            registry=r,
        )
        self.threshold = Gauge(
            "hydatis_drift_threshold",
            "Calibrated effective threshold of a column (drifted above it).",
            ["kind", "feature"],
            registry=r,
        )
        self.kind_score = Gauge(
            "hydatis_drift_kind_score",
            "Score of a drift kind in the latest window (drifted above 1).",
            ["kind"],
            registry=r,
        )
        self.window_drifted = Gauge(
            "hydatis_drift_window_drifted",
            "1 when the latest window was drifted for the kind.",
            ["kind"],
            registry=r,
        )
        self.consecutive = Gauge(
            "hydatis_drift_consecutive_windows",
            "Drifted windows in a row for the kind.",
            ["kind"],
            registry=r,
        )
        self.detected = Gauge(
            "hydatis_drift_detected",
            "1 while the kind is in drift (the persistence rule holds).",
            ["kind"],
            registry=r,
        )
        self.reference_rate = Gauge(
            "hydatis_drift_reference_false_alarm_ratio",
            "Share of no-change reference windows the kind's rule flags.",
            ["kind"],
            registry=r,
        )
        self.last_window_end = Gauge(
            "hydatis_drift_last_window_end_timestamp_seconds",
            "End of the latest window checked (Unix seconds).",
            registry=r,
        )
        self.windows = Counter(
            "hydatis_drift_windows_checked",
            "Windows checked for drift.",
            registry=r,
        )
        self.triggers = Counter(
            "hydatis_drift_retraining_triggers",
            "Retraining starts on a persistent drift, by result.",
            ["result"],
            registry=r,
        )
        for result in ("started", "failed"):
            self.triggers.labels(result=result)

    def observe_calibration(self, calibration: Calibration) -> None:
        """Export each kind's rate on the reference."""
        for kind, rule in calibration.kinds.items():
            self.reference_rate.labels(kind=kind).set(rule.reference_rate)

    def observe(self, windows: list[WindowResult]) -> None:
        """Count ``windows`` and set the gauges from the last of them."""
        if not windows:
            return
        self.windows.inc(len(windows))
        last = windows[-1]
        self.last_window_end.set(last.end.timestamp())
        for kind, res in last.kinds.items():
            if res.status == "not_monitored":
                continue
            if math.isfinite(res.score):
                self.kind_score.labels(kind=kind).set(res.score)
            self.window_drifted.labels(kind=kind).set(1.0 if res.drifted else 0.0)
            self.consecutive.labels(kind=kind).set(res.consecutive)
            self.detected.labels(kind=kind).set(1.0 if res.alarm else 0.0)
            for col, cs in res.columns.items():
                if math.isfinite(cs.score):
                    self.score.labels(kind=kind, feature=col).set(cs.score)
                if math.isfinite(cs.threshold):
                    self.threshold.labels(kind=kind, feature=col).set(cs.threshold)

    def observe_state(self, state: DriftState, kinds: list[str]) -> None:
        """Set the alarm gauges of ``kinds`` from the carried state (a check that found
        no new window still reports whether drift persists)."""
        for kind in kinds:
            self.consecutive.labels(kind=kind).set(state.consecutive.get(kind, 0))
            self.detected.labels(kind=kind).set(1.0 if state.alarm.get(kind) else 0.0)
        if state.last_window_end is not None:
            self.last_window_end.set(pd.Timestamp(state.last_window_end).timestamp())

    def observe_trigger(self, result: TriggerResult | None) -> None:
        """Count a retraining start (or failure to start)."""
        if result is not None:
            self.triggers.labels(result="started" if result.started else "failed").inc()

    def exposition(self) -> bytes:
        """The metrics in the Prometheus text format."""
        return generate_latest(self.registry)

    def write_textfile(self, path: str | Path) -> Path:
        """Write the metrics for node-exporter's textfile collector (atomically)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(out), self.registry)
        return out

    def push(self, gateway: str, *, job: str = DEFAULT_JOB, timeout_s: float = 10.0) -> None:
        """Replace this job's metrics on a Pushgateway (a check is a batch job).

        Raises:
            OSError: the Pushgateway cannot be reached or refuses the push.
        """
        push_to_gateway(gateway, job=job, registry=self.registry, timeout=timeout_s)
