"""Thresholds calibrated on the reference period itself, not copied constants.

Off-the-shelf drift tests cry wolf on real node metrics (on Alibaba v2018, K-S at
p < 0.05 flags every 1-hour window of days where nothing changed; Evidently's default
Wasserstein threshold 0.1 flags 92-100 %). What "too different" means depends on the
data, so it is measured on it:

1. cut the reference period into windows of ``window_s`` (a seeded sample of at most
   ``max_calibration_windows``); nothing was changed in them, so every flag there is a
   false alarm;
2. score each window exactly as a monitored window is scored, against the reference at
   the same time of day on the *other* days (leave-one-day-out), so a window is never
   compared with itself;
3. a column's threshold ``thr_c`` is the ``1 - false_alarm_rate`` quantile of its
   no-change scores;
4. a kind looks at several columns at once, which multiplies chances of a false alarm, so
   its windows' ratio ``r = max_c score_c / thr_c`` is calibrated too: the kind's scale
   ``tau`` is the same quantile of ``r``. A window is drifted for the kind when
   ``r > tau``, i.e. when some column's score exceeds ``thr_c * tau`` (its effective
   threshold). The kind's score is reported as ``r / tau`` (drift above 1).

The performance kind runs Page-Hinkley (:mod:`monitoring.drift.sequential`) over the
validation error stream, each day standardised by the other days' errors at the same time
of day, and calibrates its per-window maximum the same way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monitoring.drift._reference import (
    DAY_NS,
    NS,
    ErrorStream,
    RowIndex,
    window_starts,
)
from monitoring.drift.data import DriftData, DriftInputError
from monitoring.drift.sequential import page_hinkley
from monitoring.drift.settings import KINDS, DriftSettings

__all__ = [
    "CALIBRATION_VERSION",
    "MIN_CALIBRATION_WINDOWS",
    "Calibration",
    "KindCalibration",
    "calibrate",
    "step_ns",
]

CALIBRATION_VERSION = 1
#: a kind needs at least this many scored no-change windows to be calibrated.
MIN_CALIBRATION_WINDOWS = 10
#: Page-Hinkley never alarms below one standard deviation of accumulated excess error,
#: even when the validation stream never rose (a level of 0 would alarm on any rise).
MIN_PH_LEVEL = 1.0
_DIST_KINDS = ("data", "prediction", "target")
#: settings that change what a calibration means (the rest may differ between runs).
_CALIBRATION_KEYS = (
    "window_s",
    "method",
    "reference_mode",
    "hour_pad_s",
    "false_alarm_rate",
    "max_reference_rows",
    "max_calibration_windows",
    "min_window_rows",
    "error_step_s",
    "error_scale",
    "ph_delta",
    "seed",
)

ProgressFn = Callable[[int, int], None]


@dataclass
class KindCalibration:
    """One kind's calibrated decision rule.

    Attributes:
        kind: ``data``, ``prediction``, ``performance`` or ``target``.
        column_thresholds: column -> ``thr_c`` (on :func:`~monitoring.drift.stats.
            column_score`'s scale; for performance, on the Page-Hinkley statistic).
        scale: ``tau``: a window is drifted when ``max_c score_c / thr_c > tau``.
        windows: no-change windows scored.
        reference_rate: share of those windows the rule flags (close to the target
            false-alarm rate by construction; a held-out figure needs other data).
        null_scores: each calibration window's kind score ``r / tau``.
        skipped: column -> why it is not watched.
    """

    kind: str
    column_thresholds: dict[str, float]
    scale: float
    windows: int
    reference_rate: float
    null_scores: list[float] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """The watched columns."""
        return list(self.column_thresholds)

    def threshold(self, column: str) -> float:
        """The column's effective threshold ``thr_c * tau``."""
        return self.column_thresholds[column] * self.scale


@dataclass
class Calibration:
    """The decision rules of every monitored kind, and what they were calibrated on.

    Attributes:
        settings: the settings that shape the rules (window, method, reference mode...).
        kinds: kind -> its rule (kinds with no column or too little data are absent).
        reference: span, rows and days of the reference (and of the performance
            reference).
        notes: why a kind or column is not monitored.
    """

    settings: dict[str, Any]
    kinds: dict[str, KindCalibration]
    reference: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    version: int = CALIBRATION_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """Read :meth:`to_dict`'s output.

        Raises:
            DriftInputError: another format version, or a malformed document.
        """
        if data.get("version") != CALIBRATION_VERSION:
            raise DriftInputError(
                f"calibration format {data.get('version')!r}; expected {CALIBRATION_VERSION}"
            )
        try:
            kinds = {k: KindCalibration(**v) for k, v in data["kinds"].items()}
            return cls(data["settings"], kinds, data["reference"], list(data.get("notes", [])))
        except (KeyError, TypeError) as exc:
            raise DriftInputError(f"malformed calibration: {exc}") from exc

    def save(self, path: str | Path) -> Path:
        """Write the calibration as JSON."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return out

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """Read a calibration written by :meth:`save`.

        Raises:
            DriftInputError: the file is missing or not a calibration.
        """
        src = Path(path)
        try:
            data = json.loads(src.read_text())
        except FileNotFoundError as exc:
            raise DriftInputError(f"{src}: no such calibration file") from exc
        except json.JSONDecodeError as exc:
            raise DriftInputError(f"{src}: not JSON: {exc}") from exc
        return cls.from_dict(data)

    def matches(self, settings: DriftSettings) -> list[str]:
        """The calibration-shaping settings that differ from ``settings`` (empty: the
        calibration applies)."""
        now = settings_key(settings)
        return [k for k in _CALIBRATION_KEYS if self.settings.get(k) != now.get(k)]


def settings_key(settings: DriftSettings) -> dict[str, Any]:
    """The settings a calibration depends on."""
    dumped = settings.model_dump()
    return {k: dumped[k] for k in _CALIBRATION_KEYS}


def step_ns(ts_ns: np.ndarray) -> int:
    """The data's time step: the median gap between distinct row times (0 if unknown)."""
    uniq = np.unique(ts_ns)
    if uniq.size < 2:
        return 0
    return int(np.median(np.diff(uniq)))


def _quantile(values: np.ndarray, q: float) -> float:
    v = values[np.isfinite(values)]
    return float(np.quantile(v, q)) if v.size else math.nan


def _rule(
    kind: str, scores: np.ndarray, columns: list[str], settings: DriftSettings
) -> KindCalibration | str:
    """The kind's rule from its no-change scores (windows × columns), or why none."""
    q = 1.0 - settings.false_alarm_rate
    thresholds: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for j, col in enumerate(columns):
        finite = np.isfinite(scores[:, j])
        if finite.sum() < MIN_CALIBRATION_WINDOWS:
            skipped[col] = (
                f"scored in {int(finite.sum())} no-change window(s), fewer than "
                f"{MIN_CALIBRATION_WINDOWS}"
            )
            continue
        thr = _quantile(scores[:, j], q)
        if kind == "performance":
            thr = max(thr, MIN_PH_LEVEL)
        if not thr > 0:
            skipped[col] = "its score is 0 on every no-change window (nothing to compare)"
            continue
        thresholds[col] = thr
    if not thresholds:
        return f"{kind}: no column could be calibrated ({skipped or 'no column'})"
    idx = [columns.index(c) for c in thresholds]
    thr = np.array(list(thresholds.values()))
    with np.errstate(invalid="ignore"):
        ratio = scores[:, idx] / thr
    has = np.isfinite(ratio).any(axis=1)
    r = np.where(has, np.nanmax(np.where(np.isfinite(ratio), ratio, -np.inf), axis=1), np.nan)
    tau = _quantile(r, q)
    if not tau > 0:
        return f"{kind}: every no-change window scored 0"
    norm = r[np.isfinite(r)] / tau
    return KindCalibration(
        kind=kind,
        column_thresholds=thresholds,
        scale=tau,
        windows=int(np.isfinite(r).sum()),
        reference_rate=float(np.mean(norm > 1.0)) if norm.size else math.nan,
        null_scores=[round(float(x), 6) for x in norm],
        skipped=skipped,
    )


def _check_days(index_days: np.ndarray, what: str, settings: DriftSettings) -> None:
    if index_days.size < settings.min_reference_days:
        raise DriftInputError(
            f"the {what} spans {index_days.size} calendar day(s); calibration leaves one "
            f"day out at a time and needs at least {settings.min_reference_days} "
            "(give a longer reference)"
        )


def _span(data: DriftData) -> dict[str, Any]:
    span = data.span
    return {
        "start": None if span is None else span[0].isoformat(),
        "end": None if span is None else span[1].isoformat(),
        "rows": len(data.frame),
    }


def calibrate(
    reference: DriftData,
    settings: DriftSettings,
    *,
    performance_reference: DriftData | None = None,
    progress: ProgressFn | None = None,
) -> Calibration:
    """Calibrate every monitored kind on no-change windows of the reference.

    Args:
        reference: the training reference (data, prediction and target kinds).
        settings: window, method, false-alarm rate and the rest.
        performance_reference: rows the model did not train on (its validation period),
            whose errors are the performance kind's "no change"; default ``reference``
            (then in-sample errors make the rule too eager: a note says so).
        progress: called with ``(done, total)`` windows.

    Returns:
        The calibration (kinds that cannot be calibrated are absent, with a note).

    Raises:
        DriftInputError: the reference spans too few days, or has no complete window.
    """
    notes = list(reference.notes)
    window_ns = round(settings.window_s * NS)
    ts = reference.ts_ns
    end = int(ts.max()) + step_ns(ts) if ts.size else None
    starts = window_starts(ts, window_ns, end_ns=end)
    dist_kinds = [k for k in _DIST_KINDS if k in settings.kinds and reference.columns.get(k)]
    kinds: dict[str, KindCalibration] = {}

    perf_ref = performance_reference if performance_reference is not None else reference
    perf_cols = perf_ref.columns.get("performance", []) if "performance" in settings.kinds else []
    if perf_cols and performance_reference is None:
        notes.append(
            "performance: no validation period given; the training reference's own "
            "(in-sample) errors stand for 'no change'"
        )

    if dist_kinds:
        index = RowIndex(reference, _columns(reference, dist_kinds), settings)
        _check_days(index.days(), "reference", settings)
        skipped = _constant_columns(index)
        if starts.size < MIN_CALIBRATION_WINDOWS:
            raise DriftInputError(
                f"the reference holds {starts.size} complete window(s) of "
                f"{settings.window_s:g} s; calibration needs at least "
                f"{MIN_CALIBRATION_WINDOWS}"
            )
        chosen = starts
        if starts.size > settings.max_calibration_windows:
            rng = np.random.default_rng([settings.seed, 1])
            chosen = np.sort(rng.choice(starts, settings.max_calibration_windows, replace=False))
        scores = np.full((chosen.size, len(index.columns)), np.nan)
        total = chosen.size + (1 if perf_cols else 0)
        for i, start in enumerate(chosen):
            cur = index.window(int(start), int(start) + window_ns)
            scores[i], _, _ = index.scores(cur, int(start), exclude_day=int(start) // DAY_NS)
            if progress is not None:
                progress(i + 1, total)
        for kind in dist_kinds:
            cols = [c for c in reference.columns[kind] if c not in skipped]
            for c in reference.columns[kind]:
                if c in skipped:
                    notes.append(f"{kind}: column {c} skipped ({skipped[c]})")
            if not cols:
                notes.append(f"{kind}: every column is constant or empty in the reference")
                continue
            idx = [index.columns.index(c) for c in cols]
            rule = _rule(kind, scores[:, idx], cols, settings)
            if isinstance(rule, str):
                notes.append(rule)
                continue
            rule.skipped.update({c: skipped[c] for c in reference.columns[kind] if c in skipped})
            kinds[kind] = rule

    if perf_cols:
        rule = _calibrate_performance(perf_ref, perf_cols, settings)
        if isinstance(rule, str):
            notes.append(rule)
        else:
            kinds["performance"] = rule
    if progress is not None:
        progress(1, 1)
    for kind in KINDS:
        if (
            kind in settings.kinds
            and kind not in kinds
            and not any(n.startswith(f"{kind}:") for n in notes)
        ):
            notes.append(f"{kind}: no column to watch")

    reference_info = {"reference": _span(reference)}
    if ts.size:
        reference_info["reference"]["days"] = int(np.unique(ts // DAY_NS).size)
    if performance_reference is not None:
        reference_info["performance_reference"] = _span(performance_reference)
    return Calibration(settings_key(settings), kinds, reference_info, notes)


def _columns(data: DriftData, kinds: list[str]) -> list[str]:
    out: list[str] = []
    for k in kinds:
        out.extend(c for c in data.columns[k] if c not in out)
    return out


def _constant_columns(index: RowIndex) -> dict[str, str]:
    """Columns with no spread in the reference: a distance to them means nothing."""
    out = {}
    for j, col in enumerate(index.columns):
        v = index.values[:, j]
        v = v[~np.isnan(v)]
        if v.size == 0:
            out[col] = "no value in the reference"
        elif float(v.max()) == float(v.min()):
            out[col] = f"constant ({float(v[0]):g}) in the reference"
    return out


def performance_scores(
    stream: ErrorStream,
    starts: np.ndarray,
    settings: DriftSettings,
    *,
    moments: Callable[[int], tuple[np.ndarray, np.ndarray]],
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Page-Hinkley's per-window maximum over ``stream``, window by window.

    Args:
        stream: the error steps.
        starts: window starts (ns), increasing.
        settings: window length and the drift allowance.
        moments: window start -> (mean, std) of each column's no-change errors there.
        start: the statistic before the first window (per column).

    Returns:
        ``(scores, last)``: (windows, columns) maxima (NaN where a window has no step
        or no moments) and the statistic after the last window.
    """
    window_ns = round(settings.window_s * NS)
    k = stream.means.shape[1]
    cur = np.zeros(k) if start is None else np.asarray(start, dtype=np.float64).copy()
    out = np.full((starts.size, k), np.nan)
    for i, s in enumerate(starts):
        _, vals = stream.slice(int(s), int(s) + window_ns)
        if not vals.shape[0]:
            continue
        mu, sd = moments(int(s))
        z = (vals - mu) / sd
        g, cur = page_hinkley(z, settings.ph_delta, cur)
        with np.errstate(invalid="ignore"):
            seen = ~np.isnan(z)
        for j in range(k):
            if seen[:, j].any():
                out[i, j] = float(g[seen[:, j], j].max())
    return out, cur


def _calibrate_performance(
    data: DriftData, columns: list[str], settings: DriftSettings
) -> KindCalibration | str:
    stream = ErrorStream.of(data, columns, settings)
    days = np.unique(stream.day)
    if days.size < settings.min_reference_days:
        return (
            f"performance: the validation errors span {days.size} calendar day(s); "
            f"leave-one-day-out calibration needs {settings.min_reference_days}"
        )
    window_ns = round(settings.window_s * NS)
    end = int(stream.ts.max()) + step_ns(stream.ts) if stream.ts.size else None
    starts = window_starts(stream.ts, window_ns, end_ns=end)
    if starts.size < MIN_CALIBRATION_WINDOWS:
        return (
            f"performance: {starts.size} complete window(s) of validation errors; "
            f"calibration needs at least {MIN_CALIBRATION_WINDOWS}"
        )
    scores, _ = performance_scores(
        stream,
        starts,
        settings,
        moments=lambda s: stream.moments(s, settings, exclude_day=s // DAY_NS),
    )
    return _rule("performance", scores, columns, settings)
