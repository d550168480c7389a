"""Drift monitoring settings: one typed class, defaults in one place, a YAML file plus
environment overrides (``HYDATIS_DRIFT_<KEY>``).

Precedence (highest first): keyword arguments (command-line flags), the environment, the
YAML file, the defaults below. An unknown or badly typed key raises
:class:`~hydatis.errors.ConfigError` naming the key and where it came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from hydatis.settings import LayeredSettings
from hydatis.settings import load_settings as _load

__all__ = [
    "CALENDAR_FEATURES",
    "DEFAULT_FEATURES",
    "DEFAULT_RETRAIN_COMMAND",
    "ENV_PREFIX",
    "KINDS",
    "DriftSettings",
    "load_settings",
]

ENV_PREFIX = "HYDATIS_DRIFT_"
#: The four kinds, in the order they are reported.
KINDS = ("data", "prediction", "performance", "target")

#: Node features watched for data drift by default: the levels and the short-window
#: statistics of CPU and memory (mean, max, variability, trend, EWMA) and the pod-request
#: ratios (traces without pods lack those: columns constant or empty in the reference are
#: skipped). Every feature's memory fits in the default 1-hour window: a 6- or 24-hour
#: mean, or yesterday's value, changes a few times a day, so consecutive windows repeat
#: one day-level sample of it and a single unusual day reads as many drifted windows
#: (measured: on Alibaba v2018 they made 37 % of held-out no-change windows "drift",
#: without them 5 %). Their inputs are watched here, window by window. ``["all"]``
#: watches every numeric feature but the calendar ones.
DEFAULT_FEATURES: tuple[str, ...] = (
    "cpu_util",
    "mem_util",
    "cpu_ewma_10m",
    "cpu_mean_15m",
    "cpu_std_15m",
    "cpu_mean_1h",
    "cpu_max_1h",
    "cpu_std_1h",
    "cpu_slope_1h",
    "mem_mean_15m",
    "mem_mean_1h",
    "mem_std_1h",
    "mem_slope_1h",
    "cpu_requested_ratio",
    "mem_requested_ratio",
    "pod_count",
)
#: Functions of the clock, not of the cluster: a window always "drifts" on them.
CALENDAR_FEATURES = ("hour_sin", "hour_cos", "dow_sin", "dow_cos", "metric_age_s")

#: What a persistent drift decision runs: the retraining pipeline on this machine.
#: ``{dataset}`` and ``{features}`` are the directories the check read; ``{kinds}`` the
#: kinds that raised the alarm.
DEFAULT_RETRAIN_COMMAND = (
    "hydatis pipeline run retraining --dataset {dataset} --features {features}"
)


class DriftSettings(LayeredSettings):
    """Every setting of drift monitoring.

    Attributes:
        window_s: length of a monitoring window (s); windows start on multiples of it
            since the Unix epoch (whole hours for 3600).
        method: Evidently's per-column statistic: ``psi`` (the population stability
            index), ``wasserstein`` (normed by the reference's standard deviation) or
            ``ks`` (scored as -log10 p). PSI by measurement (benchmarks/drift.py, all
            three in BENCHMARKS.md): among the methods whose held-out false-alarm rate
            stays within 5 % on the distribution kinds, it detects the most injected
            changes (K-S detects more but flags 8 % of no-change windows), and it is the
            fastest.
        reference_mode: ``same_hours`` compares a window with the reference rows at the
            same time of day (± ``hour_pad_s``) on every reference day, so a daily cycle
            is not drift; ``pooled`` compares with the whole reference.
        hour_pad_s: how far on each side of the window's time of day the reference
            reaches in ``same_hours`` mode.
        false_alarm_rate: the share of no-change reference windows allowed to exceed a
            kind's threshold (the calibration quantile, per kind and window).
        persistence_windows: K, the consecutive drifted windows a kind needs before it is
            declared drifted (and retraining starts).
        max_reference_rows: reference rows compared with a window (a seeded sample),
            the same in calibration and checks.
        max_calibration_windows: no-change reference windows scored to calibrate (a
            seeded sample when there are more).
        min_window_rows: a column with fewer non-missing rows in a window is not scored.
        min_reference_days: calendar days the reference must span (leave-one-day-out
            calibration needs two at least).
        features: node features watched for data drift (``["all"]``: every numeric one
            but the calendar features).
        prediction_columns: model outputs watched for prediction drift.
        target_columns: observed loads watched for target drift (the load at t + h).
        error_step_s: the error stream's step: errors are averaged over nodes and over
            this long before the sequential test (forecasts a few seconds apart share
            most of their horizon, so their errors are nearly the same draw; the default
            is the load predictor's 5-minute horizon).
        error_scale: what the error stream is divided by: ``persistence`` (the summed
            error of the persistence forecast on the same rows and step, so a volatile
            period, where every forecast is worse, is not taken for a stale model; the
            test then follows the model's error relative to the naive one) or ``none``
            (the absolute error).
        ph_delta: the Page-Hinkley drift allowance, in reference standard deviations of
            the standardised error (a smaller one reacts to smaller changes, more slowly).
        kinds: the kinds monitored.
        retrain_command: the command a persistent drift runs (split like a shell line,
            never run through a shell), with ``{dataset}``, ``{features}``, ``{kinds}``
            placeholders; empty disables retraining.
        retrain_cooldown_s: no second retraining within this long of the last one.
        seed: seeds every sample (same seed, same numbers).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    window_s: float = Field(3600.0, gt=0)
    method: Literal["wasserstein", "psi", "ks"] = "psi"
    reference_mode: Literal["same_hours", "pooled"] = "same_hours"
    hour_pad_s: float = Field(3600.0, ge=0, le=43200)
    false_alarm_rate: float = Field(0.01, gt=0, lt=0.5)
    persistence_windows: int = Field(2, ge=1)
    max_reference_rows: int = Field(5000, ge=100)
    max_calibration_windows: int = Field(120, ge=10)
    min_window_rows: int = Field(30, ge=2)
    min_reference_days: int = Field(2, ge=2)
    features: list[str] = Field(default_factory=lambda: list(DEFAULT_FEATURES))
    prediction_columns: list[str] = Field(
        default_factory=lambda: ["cpu_util_pred", "mem_util_pred"]
    )
    target_columns: list[str] = Field(
        default_factory=lambda: ["cpu_util_target", "mem_util_target"]
    )
    error_step_s: float = Field(300.0, gt=0)
    error_scale: Literal["persistence", "none"] = "persistence"
    ph_delta: float = Field(0.5, ge=0)
    kinds: list[Literal["data", "prediction", "performance", "target"]] = Field(
        default_factory=lambda: list(KINDS)
    )
    retrain_command: str = DEFAULT_RETRAIN_COMMAND
    retrain_cooldown_s: float = Field(6 * 3600.0, ge=0)
    seed: int = 0

    @field_validator("features", "prediction_columns", "target_columns")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        out = [v.strip() for v in value if v.strip()]
        if len(set(out)) != len(out):
            raise ValueError("names a column twice")
        return out


def load_settings(path: str | Path | None = None, **overrides: Any) -> DriftSettings:
    """The settings from ``path`` (optional YAML), the environment and ``overrides``
    (layers in :func:`hydatis.settings.load_settings`).

    Raises:
        ConfigError: the file is missing or malformed, or a key is unknown or invalid
            (the message names the key and where it came from).
    """
    return _load(DriftSettings, path, label="drift settings", **overrides)
