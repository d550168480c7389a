"""The dataset validator names the table, the column and the first bad row."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from hydatis.dataset import load_dataset, save_dataset, validate
from hydatis.errors import SchemaError
from tests.factories import make_dataset, ts


def good():
    ds = make_dataset(
        [(4, 8), (8, 16)],
        [{"cpu": 1, "end": 600}, {"start": 30, "cpu": 2, "use": [(1, 1), (2, 1)]}],
    )
    ds.node_metrics = pd.DataFrame(
        {
            "ts": ts([0, 30, 60]),
            "node": ["n0", "n1", "n0"],
            "cpu_util": [0.1, 0.2, 0.3],
            "mem_util": [0.5, 0.5, 0.5],
        }
    )
    return ds


def _set(table, col, row, value):
    def mutate(ds):
        df = ds.table(table).copy()
        if df[col].dtype.kind in "fi" and not isinstance(value, (int, float)):
            df[col] = df[col].astype(object)
        df.loc[row, col] = value
        setattr(ds, table, df)

    return mutate


def _drop(table, col):
    def mutate(ds):
        setattr(ds, table, ds.table(table).drop(columns=[col]))

    return mutate


def _retype(table, col, dtype):
    def mutate(ds):
        df = ds.table(table).copy()
        df[col] = df[col].astype(dtype)
        setattr(ds, table, df)

    return mutate


CASES = [
    ("missing-column", _drop("pods", "priority"), "pods", "priority", None),
    (
        "wrong-type-string-for-number",
        _retype("nodes", "cpu_cores", str),
        "nodes",
        "cpu_cores",
        None,
    ),
    ("wrong-type-float-priority", _retype("pods", "priority", float), "pods", "priority", None),
    ("util-above-one", _set("node_metrics", "cpu_util", 2, 1.5), "node_metrics", "cpu_util", 2),
    ("util-negative", _set("node_metrics", "mem_util", 1, -0.1), "node_metrics", "mem_util", 1),
    ("util-nan", _set("node_metrics", "cpu_util", 0, np.nan), "node_metrics", "cpu_util", 0),
    ("end-before-start", _set("pods", "end_ts", 1, ts(10)), "pods", "end_ts", 1),
    ("pod-on-unknown-node", _set("pods", "node", 1, "ghost"), "pods", "node", 1),
    ("metric-of-unknown-node", _set("node_metrics", "node", 2, "ghost"), "node_metrics", "node", 2),
    ("usage-of-unknown-pod", _set("pod_usage", "pod", 2, "ghost"), "pod_usage", "pod", 2),
    ("duplicate-node", _set("nodes", "node", 1, "n0"), "nodes", "node", 1),
    ("zero-capacity", _set("nodes", "mem_gib", 0, 0.0), "nodes", "mem_gib", 0),
    ("negative-usage", _set("pod_usage", "cpu_used", 1, -1.0), "pod_usage", "cpu_used", 1),
    ("missing-start", _set("pods", "start_ts", 0, pd.NaT), "pods", "start_ts", 0),
]


@pytest.mark.parametrize(
    ("mutate", "table", "column", "row"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_names_table_column_and_row(mutate, table, column, row):
    ds = good()
    mutate(ds)
    with pytest.raises(SchemaError) as err:
        validate(ds)
    assert (err.value.table, err.value.column, err.value.row) == (table, column, row)
    assert f"table '{table}'" in str(err.value) and f"column '{column}'" in str(err.value)
    if row is not None:
        assert re.search(rf"row {row}\b", str(err.value))


def test_naive_timestamps_are_rejected():
    ds = good()
    ds.pods = ds.pods.assign(start_ts=ds.pods["start_ts"].dt.tz_localize(None))
    with pytest.raises(SchemaError, match="UTC"):
        validate(ds)


def test_unset_requests_and_running_pods_are_valid():
    ds = make_dataset([(4, 8)], [{"cpu": None, "mem": None}])
    validate(ds)
    assert ds.pods["end_ts"].isna().all()


def test_round_trip_through_parquet(tmp_path):
    ds = good()
    save_dataset(ds, tmp_path / "ds")
    back = load_dataset(tmp_path / "ds")
    for name in ("nodes", "node_metrics", "pods", "pod_usage"):
        pd.testing.assert_frame_equal(back.table(name), ds.table(name), check_dtype=False)
    assert back.meta == ds.meta


def test_missing_table_file_is_named(tmp_path):
    save_dataset(good(), tmp_path / "ds")
    (tmp_path / "ds" / "pods.parquet").unlink()
    with pytest.raises(SchemaError, match="pods"):
        load_dataset(tmp_path / "ds")
