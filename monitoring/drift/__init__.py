"""Drift detection, four kinds, with thresholds calibrated on the reference itself.

- data drift: each watched node feature against the training reference;
- prediction drift: each model output's distribution;
- performance (concept) drift: Page-Hinkley on the load predictor's error stream against
  its validation error;
- target drift: the observed node load (at t + h) against the reference.

Evidently computes the per-column statistics and the HTML report
(:mod:`~monitoring.drift.stats`); this package adds the like-with-like reference (same
time of day), the calibration (:mod:`~monitoring.drift.calibrate`), the persistence rule
and state (:mod:`~monitoring.drift.detector`), the retraining trigger
(:mod:`~monitoring.drift.trigger`), the Prometheus metrics
(:mod:`~monitoring.drift.metrics`) and the verdict and reports
(:mod:`~monitoring.drift.report`). See README.md.
"""

from monitoring.drift.calibrate import Calibration, KindCalibration, calibrate
from monitoring.drift.check import CheckOutcome, run_check
from monitoring.drift.data import (
    ERROR_COLUMNS,
    DriftData,
    DriftInputError,
    drift_data,
    predict_load,
)
from monitoring.drift.detector import (
    ColumnScore,
    DriftDetector,
    DriftState,
    KindResult,
    WindowResult,
)
from monitoring.drift.metrics import DriftMetrics
from monitoring.drift.report import verdict, write_evidently_report, write_summary_html
from monitoring.drift.sequential import page_hinkley
from monitoring.drift.settings import (
    DEFAULT_FEATURES,
    DEFAULT_RETRAIN_COMMAND,
    KINDS,
    DriftSettings,
    load_settings,
)
from monitoring.drift.stats import METHODS, column_score
from monitoring.drift.trigger import RetrainTrigger, TriggerResult

__all__ = [
    "DEFAULT_FEATURES",
    "DEFAULT_RETRAIN_COMMAND",
    "ERROR_COLUMNS",
    "KINDS",
    "METHODS",
    "Calibration",
    "CheckOutcome",
    "ColumnScore",
    "DriftData",
    "DriftDetector",
    "DriftInputError",
    "DriftMetrics",
    "DriftSettings",
    "DriftState",
    "KindCalibration",
    "KindResult",
    "RetrainTrigger",
    "TriggerResult",
    "WindowResult",
    "calibrate",
    "column_score",
    "drift_data",
    "load_settings",
    "page_hinkley",
    "predict_load",
    "run_check",
    "verdict",
    "write_evidently_report",
    "write_summary_html",
]
