"""Drift on a real trace (Alibaba v2018 machines): calibrated on the first four days, the
last two are quiet, and a load level change of +50 % injected on day 5 is caught within a
few windows. The benchmark (benchmarks/drift.py) measures the rates; this guards them."""

from __future__ import annotations

import pandas as pd
import pytest

from hydatis.config import data_dir
from hydatis.features import node_features, node_labels
from monitoring.drift import DriftDetector, DriftSettings, DriftState, calibrate, drift_data
from monitoring.drift.inject import scale_load

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def alibaba():
    base = data_dir()
    if base is None or not (base / "alibaba-v2018").is_dir():
        pytest.skip("the Alibaba v2018 trace is not in the data directory (HYDATIS_DATA_DIR)")
    from simulator.importers import load_alibaba_v2018

    return load_alibaba_v2018(base)


def test_quiet_days_are_quiet_and_a_load_change_is_caught(alibaba):
    settings = DriftSettings(kinds=["data", "target"], retrain_command="")
    ref_end = pd.Timestamp("2018-01-05T00:00:00Z")
    table = drift_data(node_features(alibaba), settings=settings, labels=node_labels(alibaba))
    reference = table.between(None, ref_end)
    det = DriftDetector(settings, calibrate(reference, settings), reference)
    quiet = det.evaluate(table.between(ref_end, None), DriftState())
    assert len(quiet) >= 40
    for kind in ("data", "target"):
        flagged = sum(w.kinds[kind].drifted for w in quiet) / len(quiet)
        assert flagged <= 0.1, kind

    at = pd.Timestamp("2018-01-05T08:00:00Z")
    changed = scale_load(alibaba, at, 1.5)
    after = drift_data(
        node_features(changed), settings=settings, labels=node_labels(changed)
    ).between(at, at + pd.Timedelta(hours=12))
    windows = det.evaluate(after, DriftState())
    first = next(i for i, w in enumerate(windows) if w.alarm)
    assert first < 6
