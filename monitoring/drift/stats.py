"""Per-column drift statistics, computed by Evidently's own stat tests.

Evidently decides *how far apart* a window and its reference are; this project only
decides *how far is too far* (:mod:`monitoring.drift.calibrate`). Every score here is
oriented so that larger means more different:

- ``wasserstein``: the first Wasserstein distance divided by the reference's standard
  deviation (Evidently's "Wasserstein distance (normed)");
- ``psi``: the population stability index over Evidently's bins;
- ``ks``: ``-log10(p)`` of the two-sample Kolmogorov-Smirnov test (Evidently returns the
  p-value, where smaller means more different).

:func:`to_evidently_threshold` maps a threshold on this scale back to Evidently's, so the
HTML report shows the calibrated decision.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["METHODS", "column_score", "to_evidently_threshold"]

METHODS = ("wasserstein", "psi", "ks")
_P_FLOOR = 1e-300


@cache
def _tests() -> dict[str, Any]:
    """Evidently's stat tests (imported on first use: the import takes seconds)."""
    from evidently.legacy.calculations.stattests import (
        ks_stat_test,
        psi_stat_test,
        wasserstein_stat_test,
    )
    from evidently.legacy.core import ColumnType

    return {
        "wasserstein": wasserstein_stat_test,
        "psi": psi_stat_test,
        "ks": ks_stat_test,
        "_numerical": ColumnType.Numerical,
    }


def column_score(method: str, reference: np.ndarray, current: np.ndarray) -> float:
    """How different ``current`` is from ``reference`` (larger = more), by ``method``.

    Both arrays must be free of NaN (the caller drops missing values) and non-empty.

    Raises:
        ValueError: an unknown method or an empty sample.
    """
    if method not in METHODS:
        raise ValueError(f"unknown drift method {method!r}; use one of {', '.join(METHODS)}")
    if reference.size == 0 or current.size == 0:
        raise ValueError("column_score needs non-empty reference and current samples")
    tests = _tests()
    result = tests[method](
        pd.Series(reference, copy=False),
        pd.Series(current, copy=False),
        tests["_numerical"],
        None,
    )
    value = float(result.drift_score)
    if method == "ks":
        return -math.log10(max(value, _P_FLOOR))
    return value


def to_evidently_threshold(method: str, threshold: float) -> float:
    """A threshold on :func:`column_score`'s scale, on Evidently's own scale (for ``ks``
    a p-value: drift when ``p <= 10 ** -threshold``)."""
    if method == "ks":
        return float(10.0 ** (-threshold))
    return float(threshold)
