"""One drift check, end to end: score the new windows, decide, maybe start retraining,
and write the verdict, the reports and the metrics.

``hydatis drift check`` is this function behind a command line; a scheduled job (a
Kubernetes CronJob) runs it every window with the same state file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitoring.drift.data import DriftData
from monitoring.drift.detector import DriftDetector, DriftState, WindowResult
from monitoring.drift.metrics import DriftMetrics
from monitoring.drift.report import (
    verdict,
    write_evidently_report,
    write_summary_html,
    write_verdict,
)
from monitoring.drift.trigger import RetrainTrigger, TriggerResult

__all__ = ["REPORT_FILE", "SUMMARY_FILE", "VERDICT_FILE", "CheckOutcome", "run_check"]

VERDICT_FILE = "verdict.json"
REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.html"
METRICS_FILE = "drift.prom"


@dataclass
class CheckOutcome:
    """What one check did.

    Attributes:
        windows: the windows scored.
        verdict: the JSON verdict.
        retraining: the retraining start, if it was due.
        paths: name -> file written (``verdict``, ``report``, ``summary``, ``metrics``).
    """

    windows: list[WindowResult]
    verdict: dict[str, Any]
    retraining: TriggerResult | None
    paths: dict[str, Path] = field(default_factory=dict)


def run_check(
    detector: DriftDetector,
    current: DriftData,
    state: DriftState,
    out_dir: str | Path,
    *,
    trigger: RetrainTrigger | None = None,
    metrics: DriftMetrics | None = None,
    wait_retraining: bool = False,
    evidently_report: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> CheckOutcome:
    """Check ``current``'s new windows and write the results into ``out_dir``.

    Args:
        detector: calibrated against the reference.
        current: the monitored period.
        state: from the previous check (updated in place; the caller saves it).
        out_dir: where ``verdict.json``, ``report.html``, ``summary.html`` and
            ``drift.prom`` go.
        trigger: starts retraining when a kind is in drift (None: never).
        metrics: the Prometheus metrics to update (a fresh set when None).
        wait_retraining: wait for the retraining command to finish.
        evidently_report: write Evidently's report of the latest window (seconds).
        progress: called with ``(done, total)`` windows.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    windows = detector.evaluate(current, state, progress=progress)
    result: TriggerResult | None = None
    reason = None
    if trigger is not None and state.last_window_end is not None:
        import pandas as pd

        now = pd.Timestamp(state.last_window_end)
        result = trigger.fire(state, now, wait=wait_retraining)
        if result is None:
            reason = trigger.due(state, now)[1]
    elif trigger is None:
        reason = "no retraining trigger configured"
    data = verdict(
        windows,
        state,
        detector.calibration,
        detector.settings,
        retraining=result,
        retraining_reason=reason,
    )
    paths: dict[str, Path] = {}
    report_name = None
    if evidently_report and windows:
        written = write_evidently_report(detector, windows[-1], current, out / REPORT_FILE)
        if written is not None:
            paths["report"] = written
            paths["report_json"] = written.with_suffix(".json")
            report_name = written.name
    paths["verdict"] = write_verdict(data, out / VERDICT_FILE)
    paths["summary"] = write_summary_html(
        windows, detector.calibration, data, out / SUMMARY_FILE, evidently_report=report_name
    )
    metrics = metrics if metrics is not None else DriftMetrics()
    metrics.observe_calibration(detector.calibration)
    metrics.observe(windows)
    metrics.observe_state(state, list(detector.calibration.kinds))
    metrics.observe_trigger(result)
    paths["metrics"] = metrics.write_textfile(out / METRICS_FILE)
    return CheckOutcome(windows, data, result, paths)
