"""Labelled server-metric data for the anomaly detector's evaluation: SMD, ASD and NAB's
AWS CloudWatch series, read at run time from the data directory (never copied).

Every loader returns :class:`Entity` objects: one server (SMD machine, ASD ``omi-i``, NAB
file) with a train part (unlabelled, may hold anomalies), a test part and its 0/1 labels.

- **SMD** (``smd/``): ``npy/<m>_{train,test,test_label}.npy`` or the InterFusion pickles
  ``processed/<m>_*.pkl``; labels fall back to ``test_label/<m>.txt``; 1-minute samples.
- **ASD** (``asd/``): ``npy/omi-i_*.npy`` or ``processed/omi-i_*.pkl``; without a label
  file the labels come from ``interpretation_label`` (``end`` inclusive); 5-minute samples.
- **NAB** (``nab/``): univariate CSVs; events are the windows of
  ``labels/combined_windows.json``. Split: train = the first 15% of each file (NAB's own
  probationary period, which its scorer never scores), test = the rest. The split is a
  fixed share, chosen without the labels (no AWS window starts before 17%).

The pickles are read with an Unpickler that admits only numpy arrays
(``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct``,
``numpy.ndarray``, ``numpy.dtype``): loading a pickle can otherwise run arbitrary code.
"""

from __future__ import annotations

import io
import json
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hydatis.config import data_dir as _configured_data_dir
from hydatis.errors import DataSourceError

__all__ = [
    "ASD_INTERVAL_S",
    "NAB_TRAIN_FRACTION",
    "SMD_INTERVAL_S",
    "SMD_METRIC_NAMES",
    "Entity",
    "load_asd",
    "load_nab",
    "load_pickled_array",
    "load_smd",
]

SMD_INTERVAL_S = 60.0
ASD_INTERVAL_S = 300.0
NAB_TRAIN_FRACTION = 0.15
NAB_SUBSETS = ("realAWSCloudwatch",)
#: Readable labels for SMD's 38 unnamed metrics, as the community package conmo assigns
#: them (unverified; the dataset authors publish no names).
SMD_METRIC_NAMES = [
    "cpu_r",
    "load_1",
    "load_5",
    "load_15",
    "mem_shmem",
    "mem_u",
    "mem_u_e",
    "total_mem",
    "disk_q",
    "disk_r",
    "disk_rb",
    "disk_svc",
    "disk_u",
    "disk_w",
    "disk_wa",
    "disk_wb",
    "si",
    "so",
    "eth1_fi",
    "eth1_fo",
    "eth1_pi",
    "eth1_po",
    "tcp_tw",
    "tcp_use",
    "active_opens",
    "curr_estab",
    "in_errs",
    "in_segs",
    "listen_overflows",
    "out_rsts",
    "out_segs",
    "passive_opens",
    "retransegs",
    "tcp_timeouts",
    "udp_in_dg",
    "udp_out_dg",
    "udp_rcv_buf_errs",
    "udp_snd_buf_errs",
]

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


@dataclass
class Entity:
    """One server's labelled series.

    Attributes:
        dataset: ``smd``, ``asd`` or ``nab``.
        name: the machine, ``omi-i`` or NAB file (``subset/file.csv``).
        train: ``(n_train, d)`` float, no labels.
        test: ``(n_test, d)`` float.
        labels: ``(n_test,)`` int8 0/1.
        interval_s: seconds between samples.
        feature_names: ``d`` readable names.
        segments: interpretation labels ``(start, end_exclusive, [0-based dims])`` where
            the source has them.
    """

    dataset: str
    name: str
    train: np.ndarray
    test: np.ndarray
    labels: np.ndarray
    interval_s: float
    feature_names: list[str]
    segments: list[tuple[int, int, list[int]]] = field(default_factory=list)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays")
        return super().find_class(module, name)


def load_pickled_array(path: str | Path) -> np.ndarray:
    """One numpy array from a pickle, refusing anything but numpy arrays.

    Raises:
        DataSourceError: the file does not hold exactly a numpy array.
    """
    p = Path(path)
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(p.read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, OSError) as exc:
        raise DataSourceError(f"{p}: {exc}") from exc
    if not isinstance(obj, np.ndarray):
        raise DataSourceError(f"{p}: expected a numpy array, got {type(obj).__name__}")
    return obj


def _base(data_dir: str | Path | None, sub: str) -> Path:
    base = Path(data_dir) if data_dir is not None else _configured_data_dir()
    if base is None:
        raise DataSourceError(f"no data directory configured (HYDATIS_DATA_DIR) for {sub}/")
    root = base / sub if (base / sub).is_dir() else base
    if not root.is_dir():
        raise DataSourceError(f"{root}: folder not found")
    return root


def _array(root: Path, stem: str) -> np.ndarray | None:
    """``npy/<stem>.npy`` or ``processed/<stem>.pkl``; None when neither exists."""
    npy = root / "npy" / f"{stem}.npy"
    if npy.exists():
        return np.load(npy, allow_pickle=False)
    pkl = root / "processed" / f"{stem}.pkl"
    if pkl.exists():
        return load_pickled_array(pkl)
    return None


def _names_with_data(root: Path) -> list[str]:
    names = {
        p.name[: -len(suffix)]
        for folder, suffix in (("npy", "_train.npy"), ("processed", "_train.pkl"))
        for p in (root / folder).glob(f"*{suffix}")
    }

    def key(n: str) -> list[object]:
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)]

    return sorted(names, key=key)


def _segments(path: Path, end_inclusive: bool) -> list[tuple[int, int, list[int]]]:
    out: list[tuple[int, int, list[int]]] = []
    if not path.exists():
        return out
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            span, dims = line.split(":")
            a, b = (int(v) for v in span.split("-"))
            out.append((a, b + 1 if end_inclusive else b, [int(d) - 1 for d in dims.split(",")]))
        except ValueError as exc:
            raise DataSourceError(f"{path}: line {line_no}: cannot parse {line!r}") from exc
    return out


def _load_entities(
    dataset: str,
    root: Path,
    names: Sequence[str] | None,
    interval_s: float,
    end_inclusive: bool,
    metric_names: Sequence[str] | None,
) -> list[Entity]:
    chosen = list(names) if names is not None else _names_with_data(root)
    out: list[Entity] = []
    for name in chosen:
        train, test = _array(root, f"{name}_train"), _array(root, f"{name}_test")
        if train is None or test is None:
            raise DataSourceError(f"{root}: no train/test arrays for {name}")
        segs = _segments(root / "interpretation_label" / f"{name}.txt", end_inclusive)
        labels = _array(root, f"{name}_test_label")
        txt = root / "test_label" / f"{name}.txt"
        if labels is None and txt.exists():
            labels = np.loadtxt(txt, dtype=np.int64)
        if labels is None:
            if not segs:
                raise DataSourceError(f"{root}: no test labels for {name}")
            labels = np.zeros(len(test), dtype=np.int8)
            for a, b, _ in segs:
                labels[a:b] = 1
        labels = np.asarray(labels).astype(np.int8).ravel()
        if labels.size != len(test):
            raise DataSourceError(f"{root}: {name}: {labels.size} labels for {len(test)} rows")
        d = train.shape[1]
        fn = list(metric_names) if metric_names and len(metric_names) == d else None
        out.append(
            Entity(
                dataset=dataset,
                name=name,
                train=np.asarray(train, dtype=np.float32),
                test=np.asarray(test, dtype=np.float32),
                labels=labels,
                interval_s=interval_s,
                feature_names=fn or [f"m{i + 1}" for i in range(d)],
                segments=segs,
            )
        )
    return out


def load_smd(
    data_dir: str | Path | None = None, machines: Sequence[str] | None = None
) -> list[Entity]:
    """SMD machines with full matrices (default: every one the folder has).

    Args:
        data_dir: the data directory (default :func:`hydatis.config.data_dir`) or its
            ``smd/`` folder.
        machines: e.g. ``["machine-1-7"]``.
    """
    return _load_entities(
        "smd", _base(data_dir, "smd"), machines, SMD_INTERVAL_S, False, SMD_METRIC_NAMES
    )


def load_asd(
    data_dir: str | Path | None = None, entities: Sequence[str] | None = None
) -> list[Entity]:
    """ASD servers (default: every ``omi-i`` the folder has arrays for).

    Args:
        data_dir: the data directory or its ``asd/`` folder.
        entities: e.g. ``["omi-1"]``.
    """
    return _load_entities("asd", _base(data_dir, "asd"), entities, ASD_INTERVAL_S, True, None)


def load_nab(
    data_dir: str | Path | None = None,
    files: Sequence[str] | None = None,
    *,
    subsets: Sequence[str] = NAB_SUBSETS,
    train_fraction: float = NAB_TRAIN_FRACTION,
) -> list[Entity]:
    """NAB series (default: every file of ``subsets``), split by ``train_fraction``.

    Args:
        data_dir: the data directory or its ``nab/`` folder.
        files: ``subset/file.csv`` keys of ``combined_windows.json``.
        subsets: the NAB folders to read when ``files`` is None.
        train_fraction: the head share used as (unlabelled) training data.

    Returns:
        Univariate entities (``d = 1``, feature ``value``); labels mark the samples inside
        a window; ``interval_s`` is the median gap between timestamps.
    """
    root = _base(data_dir, "nab")
    windows_path = root / "labels" / "combined_windows.json"
    try:
        windows = json.loads(windows_path.read_text())
    except (OSError, ValueError) as exc:
        raise DataSourceError(f"{windows_path}: {exc}") from exc
    if files is None:
        files = sorted(f"{s}/{p.name}" for s in subsets for p in (root / "data" / s).glob("*.csv"))
    out: list[Entity] = []
    for key in files:
        path = root / "data" / key
        try:
            df = pd.read_csv(path)
            ts = pd.to_datetime(df["timestamp"])
            values = df["value"].to_numpy(dtype=np.float64)
        except (OSError, KeyError, ValueError) as exc:
            raise DataSourceError(f"{path}: {exc}") from exc
        labels = np.zeros(len(df), dtype=np.int8)
        for a, b in windows.get(key, []):
            labels[((ts >= pd.Timestamp(a)) & (ts <= pd.Timestamp(b))).to_numpy()] = 1
        k = int(len(df) * train_fraction)
        gaps = np.diff(ts.to_numpy().astype("datetime64[s]").astype(np.int64))
        out.append(
            Entity(
                dataset="nab",
                name=key,
                train=values[:k, None].astype(np.float32),
                test=values[k:, None].astype(np.float32),
                labels=labels[k:],
                interval_s=float(np.median(gaps)) if gaps.size else 300.0,
                feature_names=["value"],
            )
        )
    return out
