"""Window-by-window drift decisions, and the persistence that turns them into an alarm.

Each complete window of the monitored period is scored per kind against the reference at
the same time of day (:mod:`monitoring.drift._reference`), with the calibrated rule
(:mod:`monitoring.drift.calibrate`): the window is *drifted* for a kind when its score
exceeds 1. A kind is *in drift* (the alarm) once ``persistence_windows`` (K) consecutive
windows are drifted, and stays so until a window is not. A window without enough data for
a kind leaves its count and alarm as they were. The state (counts, the Page-Hinkley
statistic, the last window seen) carries from one check to the next.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitoring.drift._reference import NS, ErrorStream, RowIndex, window_starts
from monitoring.drift.calibrate import Calibration, performance_scores, step_ns
from monitoring.drift.data import DriftData, DriftInputError
from monitoring.drift.settings import KINDS, DriftSettings

__all__ = [
    "ColumnScore",
    "DriftDetector",
    "DriftState",
    "KindResult",
    "WindowResult",
]

_DIST_KINDS = ("data", "prediction", "target")


@dataclass
class ColumnScore:
    """One column in one window.

    Attributes:
        score: the statistic (Evidently's, or the Page-Hinkley maximum); NaN when not
            scored.
        threshold: the effective threshold (drifted above it).
        n_current, n_reference: values compared (performance: error steps in the window).
    """

    score: float
    threshold: float
    n_current: int
    n_reference: int

    @property
    def ratio(self) -> float:
        """``score / threshold`` (drifted above 1)."""
        return self.score / self.threshold if self.threshold > 0 else math.nan


@dataclass
class KindResult:
    """One kind in one window.

    Attributes:
        kind: the kind.
        status: ``ok``, ``drifted`` (this window), ``insufficient_data`` or
            ``not_monitored``.
        score: the kind's score (drifted above 1), NaN without data.
        drifted: this window's decision.
        consecutive: drifted windows in a row, this one included.
        alarm: the kind is in drift (K consecutive drifted windows).
        columns: column -> its score.
    """

    kind: str
    status: str
    score: float
    drifted: bool
    consecutive: int
    alarm: bool
    columns: dict[str, ColumnScore] = field(default_factory=dict)

    def top(self, n: int = 5) -> list[tuple[str, ColumnScore]]:
        """The ``n`` columns with the highest ratio."""
        scored = [(c, s) for c, s in self.columns.items() if np.isfinite(s.ratio)]
        return sorted(scored, key=lambda cs: -cs[1].ratio)[:n]


@dataclass
class WindowResult:
    """All kinds in one window ``[start, end)``."""

    start: pd.Timestamp
    end: pd.Timestamp
    kinds: dict[str, KindResult]

    @property
    def alarm(self) -> bool:
        """Whether any kind is in drift after this window."""
        return any(k.alarm for k in self.kinds.values())


@dataclass
class DriftState:
    """What carries from one check to the next.

    Attributes:
        consecutive: kind -> drifted windows in a row.
        alarm: kind -> in drift.
        alarm_since: kind -> start of the window that raised the alarm (ISO time).
        cusum: error column -> the Page-Hinkley statistic after the last window.
        last_window_end: end of the last window checked (ISO time); later checks start
            there.
        windows_checked: windows checked so far.
        last_retrain: when retraining last started (ISO time), and why.
    """

    consecutive: dict[str, int] = field(default_factory=dict)
    alarm: dict[str, bool] = field(default_factory=dict)
    alarm_since: dict[str, str] = field(default_factory=dict)
    cusum: dict[str, float] = field(default_factory=dict)
    last_window_end: str | None = None
    windows_checked: int = 0
    last_retrain: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftState:
        """Read :meth:`to_dict`'s output (unknown keys are an error)."""
        try:
            return cls(**data)
        except TypeError as exc:
            raise DriftInputError(f"malformed drift state: {exc}") from exc

    def save(self, path: str | Path) -> Path:
        """Write the state as JSON (atomically: a crash leaves the previous state)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        tmp.replace(out)
        return out

    @classmethod
    def load(cls, path: str | Path) -> DriftState:
        """The state in ``path``, or a fresh one when the file does not exist.

        Raises:
            DriftInputError: the file is not a drift state.
        """
        src = Path(path)
        if not src.exists():
            return cls()
        try:
            return cls.from_dict(json.loads(src.read_text()))
        except json.JSONDecodeError as exc:
            raise DriftInputError(f"{src}: not JSON: {exc}") from exc


ProgressFn = Callable[[int, int], None]


class DriftDetector:
    """Scores monitored windows with a calibration against its reference.

    Args:
        settings: the settings (must match the calibration's, see
            :meth:`Calibration.matches`).
        calibration: the rules.
        reference: the same reference the calibration used.
        performance_reference: the same validation period (default ``reference``).

    Raises:
        DriftInputError: the settings differ from those the calibration was made with.
    """

    def __init__(
        self,
        settings: DriftSettings,
        calibration: Calibration,
        reference: DriftData,
        *,
        performance_reference: DriftData | None = None,
    ) -> None:
        differ = calibration.matches(settings)
        if differ:
            raise DriftInputError(
                f"the calibration was made with other settings ({', '.join(differ)}): "
                "calibrate again"
            )
        self.settings = settings
        self.calibration = calibration
        self.reference = reference
        self.performance_reference = performance_reference or reference
        self._index: RowIndex | None = None
        self._stream: ErrorStream | None = None

    # ------------------------------------------------------------------ helpers

    def _dist_columns(self) -> list[str]:
        out: list[str] = []
        for kind in _DIST_KINDS:
            rule = self.calibration.kinds.get(kind)
            if rule is not None:
                out.extend(c for c in rule.columns if c not in out)
        return out

    def _ref_index(self) -> RowIndex:
        if self._index is None:
            self._index = RowIndex(self.reference, self._dist_columns(), self.settings)
        return self._index

    def _ref_stream(self) -> ErrorStream:
        if self._stream is None:
            rule = self.calibration.kinds.get("performance")
            cols = rule.columns if rule is not None else []
            self._stream = ErrorStream.of(self.performance_reference, cols, self.settings)
        return self._stream

    def windows(self, current: DriftData, state: DriftState | None = None) -> np.ndarray:
        """Start times (ns) of the complete windows of ``current`` not yet checked."""
        ts = current.ts_ns
        if not ts.size:
            return np.zeros(0, dtype=np.int64)
        window_ns = round(self.settings.window_s * NS)
        starts = window_starts(ts, window_ns, end_ns=int(ts.max()) + step_ns(ts))
        if state is not None and state.last_window_end is not None:
            after = pd.Timestamp(state.last_window_end).value
            starts = starts[starts >= after]
        return starts

    def reference_frame(self, start: pd.Timestamp) -> pd.DataFrame:
        """The reference rows a window starting at ``start`` is compared with."""
        rows = self._ref_index().reference_rows(pd.Timestamp(start).value)
        return self.reference.frame.iloc[rows].reset_index(drop=True)

    # ------------------------------------------------------------------ evaluation

    def evaluate(
        self,
        current: DriftData,
        state: DriftState | None = None,
        *,
        progress: ProgressFn | None = None,
    ) -> list[WindowResult]:
        """Score every complete, unchecked window of ``current``, in time order.

        Args:
            current: the monitored period (its rows may start earlier than the first
                unchecked window; only complete windows after ``state`` are scored).
            state: carried from the previous check and updated in place (a fresh one
                when None).
            progress: called with ``(done, total)`` windows.

        Returns:
            One result per window scored (empty when no new window is complete).

        Raises:
            DriftInputError: ``current`` lacks a column the calibration watches.
        """
        state = state if state is not None else DriftState()
        missing = [c for c in self._dist_columns() if c not in current.frame.columns]
        if missing:
            raise DriftInputError(
                f"the monitored data lacks the calibrated column(s) {missing[:5]}: give it "
                "the same features, forecasts and labels as the reference"
            )
        starts = self.windows(current, state)
        if not starts.size:
            return []
        window_ns = round(self.settings.window_s * NS)
        dist_cols = self._dist_columns()
        cur_index = RowIndex(current, dist_cols, self.settings) if dist_cols else None
        perf = self._performance(current, starts, state)
        results: list[WindowResult] = []
        for i, start in enumerate(starts):
            s = int(start)
            col_scores: dict[str, ColumnScore] = {}
            if cur_index is not None:
                values = cur_index.window(s, s + window_ns)
                scores, n_cur, n_ref = self._ref_index().scores(values, s)
                for j, col in enumerate(dist_cols):
                    col_scores[col] = ColumnScore(
                        float(scores[j]), math.nan, int(n_cur[j]), int(n_ref[j])
                    )
            kinds: dict[str, KindResult] = {}
            for kind in KINDS:
                kinds[kind] = self._kind(kind, col_scores, perf, i, state)
            window = WindowResult(
                pd.Timestamp(s, tz="UTC"), pd.Timestamp(s + window_ns, tz="UTC"), kinds
            )
            for kind, res in kinds.items():
                if res.alarm and kind not in state.alarm_since:
                    state.alarm_since[kind] = window.start.isoformat()
                if not res.alarm:
                    state.alarm_since.pop(kind, None)
            state.last_window_end = window.end.isoformat()
            state.windows_checked += 1
            results.append(window)
            if progress is not None:
                progress(i + 1, starts.size)
        return results

    def _performance(
        self, current: DriftData, starts: np.ndarray, state: DriftState
    ) -> tuple[list[str], np.ndarray, np.ndarray] | None:
        rule = self.calibration.kinds.get("performance")
        if rule is None or "performance" not in self.settings.kinds:
            return None
        cols = rule.columns
        if any(c not in current.frame.columns for c in cols):
            return None
        stream = ErrorStream.of(current, cols, self.settings)
        ref = self._ref_stream()
        start = np.array([state.cusum.get(c, 0.0) for c in cols])
        scores, last = performance_scores(
            stream,
            starts,
            self.settings,
            moments=lambda s: ref.moments(s, self.settings),
            start=start,
        )
        state.cusum.update({c: float(v) for c, v in zip(cols, last, strict=True)})
        window_ns = round(self.settings.window_s * NS)
        counts = np.array(
            [
                [
                    int((~np.isnan(stream.slice(int(s), int(s) + window_ns)[1][:, j])).sum())
                    for j in range(len(cols))
                ]
                for s in starts
            ],
            dtype=np.int64,
        ).reshape(starts.size, len(cols))
        return cols, scores, counts

    def _kind(
        self,
        kind: str,
        col_scores: dict[str, ColumnScore],
        perf: tuple[list[str], np.ndarray, np.ndarray] | None,
        i: int,
        state: DriftState,
    ) -> KindResult:
        rule = self.calibration.kinds.get(kind)
        if rule is None or kind not in self.settings.kinds:
            return KindResult(kind, "not_monitored", math.nan, False, 0, False)
        if kind == "performance":
            if perf is None:
                return KindResult(kind, "not_monitored", math.nan, False, 0, False)
            cols, scores, counts = perf
            n_ref = len(self._ref_stream().ts)
            mine = {
                c: ColumnScore(float(scores[i, j]), math.nan, int(counts[i, j]), n_ref)
                for j, c in enumerate(cols)
            }
        else:
            mine = {
                c: ColumnScore(cs.score, math.nan, cs.n_current, cs.n_reference)
                for c, cs in col_scores.items()
                if c in rule.column_thresholds
            }
        for c, cs in mine.items():
            cs.threshold = rule.threshold(c)
        ratios = [cs.ratio for cs in mine.values() if np.isfinite(cs.ratio)]
        prev_count = state.consecutive.get(kind, 0)
        prev_alarm = state.alarm.get(kind, False)
        if not ratios:
            return KindResult(
                kind, "insufficient_data", math.nan, False, prev_count, prev_alarm, mine
            )
        score = float(max(ratios))
        drifted = score > 1.0
        count = prev_count + 1 if drifted else 0
        alarm = count >= self.settings.persistence_windows
        state.consecutive[kind] = count
        state.alarm[kind] = alarm
        return KindResult(kind, "drifted" if drifted else "ok", score, drifted, count, alarm, mine)
