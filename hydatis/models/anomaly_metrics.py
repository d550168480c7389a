"""Evaluation figures for anomaly detection on labelled series, without point-adjustment
first.

A series is a 0/1 label per sample (1 = inside a labelled anomaly), a continuous score
and a boolean flag per sample. An *event* is a maximal run of labelled samples; an
*alarm* is a maximal run of flagged samples.

- point-wise precision, recall and false-positive rate over samples;
- AUC-PR: :func:`sklearn.metrics.average_precision_score` of the score (threshold-free);
- event recall: share of events with at least one flagged sample inside;
- alarm-level precision: share of alarms that overlap an event;
- false alarms per node-day: alarms that overlap no event, per day of samples;
- detection delay: samples from an event's start to its first flagged sample (detected
  events only; undetected ones are listed apart);
- point-adjusted F1 (the literature's figure, for comparison only): every sample of an
  event counts as detected when any of its samples is flagged, then point-wise F1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "alarm_precision",
    "detection_delays",
    "evaluate_series",
    "event_recall",
    "false_alarms_per_day",
    "point_adjust",
    "pointwise",
    "runs",
]


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True in ``mask`` as ``(start, end)`` with ``end`` exclusive."""
    m = np.asarray(mask, dtype=bool).ravel()
    if not m.size:
        return []
    d = np.diff(np.r_[0, m.astype(np.int8), 0])
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def pointwise(labels: np.ndarray, flags: np.ndarray) -> dict[str, float]:
    """Point-wise precision, recall, F1 and false-positive rate.

    Precision is NaN without any flag, recall NaN without any labelled sample, FPR NaN
    without any normal sample.
    """
    y = np.asarray(labels, dtype=bool).ravel()
    f = np.asarray(flags, dtype=bool).ravel()
    tp = int(np.sum(y & f))
    fp = int(np.sum(~y & f))
    fn = int(np.sum(y & ~f))
    tn = int(np.sum(~y & ~f))
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    if not tp + fn:
        f1 = math.nan  # nothing to find
    elif not tp:
        f1 = 0.0  # no flag, or none on a labelled sample
    else:
        f1 = 2 * precision * recall / (precision + recall)
    fpr = fp / (fp + tn) if fp + tn else math.nan
    return {"precision": precision, "recall": recall, "f1": f1, "fpr": fpr}


def _overlaps(run: tuple[int, int], mask: np.ndarray) -> bool:
    return bool(mask[run[0] : run[1]].any())


def event_recall(labels: np.ndarray, flags: np.ndarray) -> float:
    """Share of events (label runs) with at least one flagged sample; NaN without events."""
    f = np.asarray(flags, dtype=bool).ravel()
    events = runs(labels)
    if not events:
        return math.nan
    return sum(_overlaps(e, f) for e in events) / len(events)


def alarm_precision(labels: np.ndarray, flags: np.ndarray) -> float:
    """Share of alarms (flag runs) that overlap an event; NaN without alarms."""
    y = np.asarray(labels, dtype=bool).ravel()
    alarms = runs(flags)
    if not alarms:
        return math.nan
    return sum(_overlaps(a, y) for a in alarms) / len(alarms)


def false_alarms_per_day(labels: np.ndarray, flags: np.ndarray, interval_s: float) -> float:
    """Alarms that overlap no event, per day of samples (``interval_s`` apart)."""
    y = np.asarray(labels, dtype=bool).ravel()
    days = y.size * float(interval_s) / 86400.0
    if days <= 0:
        return math.nan
    false = sum(not _overlaps(a, y) for a in runs(flags))
    return false / days


def detection_delays(labels: np.ndarray, flags: np.ndarray) -> tuple[list[int], list[int]]:
    """Per event: samples from its start to its first flagged sample.

    Returns:
        ``(delays, undetected)``: the delays of the detected events, in event order, and
        the start indices of the events no flag touched.
    """
    f = np.asarray(flags, dtype=bool).ravel()
    delays: list[int] = []
    undetected: list[int] = []
    for start, end in runs(labels):
        hit = np.flatnonzero(f[start:end])
        if hit.size:
            delays.append(int(hit[0]))
        else:
            undetected.append(start)
    return delays, undetected


def point_adjust(labels: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """Flags with every sample of a touched event set (the point-adjust protocol)."""
    y = np.asarray(labels, dtype=bool).ravel()
    adj = np.asarray(flags, dtype=bool).ravel().copy()
    for start, end in runs(y):
        if adj[start:end].any():
            adj[start:end] = True
    return adj


def _auc_pr(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    y = np.asarray(labels, dtype=bool).ravel()
    if not y.any() or y.all():
        return math.nan
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64).ravel(), nan=0.0)
    return float(average_precision_score(y, s))


def evaluate_series(
    labels: np.ndarray, scores: np.ndarray, flags: np.ndarray, *, interval_s: float
) -> dict[str, Any]:
    """All figures of one series (one node or entity).

    Args:
        labels: 0/1 per sample.
        scores: anomaly score per sample (higher = more anomalous).
        flags: the detector's alarm decision per sample.
        interval_s: seconds between samples (for false alarms per node-day).

    Returns:
        ``precision, recall, fpr, f1, auc_pr, event_recall, alarm_precision,
        false_alarms_per_day, delay_median, delay_p95`` (samples), ``pa_f1``
        (point-adjusted), ``events, detected, alarms`` (counts), ``delays`` and
        ``undetected`` (lists).
    """
    y = np.asarray(labels, dtype=bool).ravel()
    f = np.asarray(flags, dtype=bool).ravel()
    if y.shape != f.shape or y.shape != np.asarray(scores).ravel().shape:
        raise ValueError(
            f"labels, scores and flags differ in length: {y.size}, "
            f"{np.asarray(scores).size}, {f.size}"
        )
    out: dict[str, Any] = dict(pointwise(y, f))
    out["auc_pr"] = _auc_pr(y, scores)
    out["event_recall"] = event_recall(y, f)
    out["alarm_precision"] = alarm_precision(y, f)
    out["false_alarms_per_day"] = false_alarms_per_day(y, f, interval_s)
    delays, undetected = detection_delays(y, f)
    out["delay_median"] = float(np.median(delays)) if delays else math.nan
    out["delay_p95"] = float(np.percentile(delays, 95)) if delays else math.nan
    out["pa_f1"] = pointwise(y, point_adjust(y, f))["f1"]
    out["events"] = len(runs(y))
    out["detected"] = len(delays)
    out["alarms"] = len(runs(f))
    out["delays"] = delays
    out["undetected"] = undetected
    return out
