"""Importer for the Bitbrains GWA-T-12 VM traces (one CSV file per VM).

Shen, van Beek, Iosup, "Statistical Characterization of Business-Critical Workloads
Hosted in Cloud Datacenters", CCGrid 2015 (Grid Workloads Archive, TU Delft).

Each file has a header row and the separator ``";"`` followed by a TAB. Despite its name,
``Timestamp [ms]`` holds Unix epoch *seconds*. Each VM becomes two series on a regular
grid (default 300 s, anchored at multiples of the step in epoch time):

- ``cpu_frac`` = ``CPU usage [MHZ]`` / ``CPU capacity provisioned [MHZ]``
- ``mem_frac`` = ``Memory usage [KB]`` / ``Memory capacity provisioned [KB]``

both clipped to [0, 1]. The fraction is taken row by row, so a VM resized within the
file keeps a consistent series. Clean-up:

- rows whose provisioned CPU or memory is 0 (the VM reported nothing) are dropped;
- duplicate rows and several samples falling in one grid step are averaged;
- grid steps with no sample (gaps) are filled by linear interpolation between the
  neighbouring samples (``observed`` marks the steps that had a sample).

Files are read one at a time, in chunks, so a whole month folder streams in constant
memory per VM.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hydatis.errors import DataSourceError
from simulator.importers._common import (
    DEFAULT_CHUNK_ROWS,
    read_csv_chunks,
    resolve,
    resolve_default,
)

__all__ = [
    "DEFAULT_FOLDER",
    "STEP_S",
    "VMSeries",
    "iter_bitbrains",
    "load_bitbrains",
    "read_bitbrains_vm",
]

DEFAULT_FOLDER = "bitbrains-rnd/2013-7"
STEP_S = 300

_TS = "Timestamp [ms]"
_CORES = "CPU cores"
_CPU_CAP = "CPU capacity provisioned [MHZ]"
_CPU_USE = "CPU usage [MHZ]"
_MEM_CAP = "Memory capacity provisioned [KB]"
_MEM_USE = "Memory usage [KB]"
_COLS = (_TS, _CORES, _CPU_CAP, _CPU_USE, _MEM_CAP, _MEM_USE)


@dataclass(frozen=True)
class VMSeries:
    """One VM's usage relative to its provisioned size on a regular grid.

    Attributes:
        vm: the VM's id (the file name without extension).
        path: the file read.
        t0: epoch seconds of the first grid point.
        step_s: grid step (s).
        cpu_frac, mem_frac: use / provisioned per grid step, in [0, 1].
        observed: True where the grid step held at least one sample.
        cpu_cores: provisioned cores (median over valid rows).
        mem_gib: provisioned memory in GiB (median over valid rows).
        n_rows: rows in the file; n_duplicates: duplicate timestamps among valid rows;
        n_unreported: rows with a zero provisioned size (dropped); n_resizes: changes
        of the provisioned CPU or memory between consecutive valid rows.
    """

    vm: str
    path: Path
    t0: int
    step_s: int
    cpu_frac: np.ndarray
    mem_frac: np.ndarray
    observed: np.ndarray
    cpu_cores: float
    mem_gib: float
    n_rows: int
    n_duplicates: int
    n_unreported: int
    n_resizes: int

    def __len__(self) -> int:
        return int(self.cpu_frac.size)

    @property
    def coverage(self) -> float:
        """Share of grid steps that held a real sample."""
        return float(self.observed.mean()) if self.observed.size else 0.0


def _fill(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    idx = np.flatnonzero(observed)
    if idx.size == len(values):
        return values
    return np.interp(np.arange(len(values)), idx, values[idx])


def read_bitbrains_vm(
    path: str | Path, *, step_s: int = STEP_S, chunksize: int = DEFAULT_CHUNK_ROWS
) -> VMSeries:
    """Read one Bitbrains VM file onto a regular ``step_s`` grid (see the module docstring).

    Raises:
        DataSourceError: a missing column, a value that is not a number or is negative
            (naming the file, line and column), or a file with no valid row.
    """
    file = Path(path)
    parts: dict[str, list[np.ndarray]] = {c: [] for c in _COLS}
    n_rows = 0
    for _first, chunk in read_csv_chunks(
        file,
        columns=_COLS,
        numeric=_COLS,
        sep=";",
        required=(_TS,),
        chunksize=chunksize,
        nonnegative=_COLS,
    ):
        n_rows += len(chunk)
        for c in _COLS:
            parts[c].append(chunk[c].to_numpy(dtype="float64"))
    if n_rows == 0:
        raise DataSourceError(f"{file}: no data rows")
    a = {c: np.concatenate(v) for c, v in parts.items()}
    valid = (a[_CPU_CAP] > 0) & (a[_MEM_CAP] > 0)
    valid &= ~(np.isnan(a[_CPU_USE]) | np.isnan(a[_MEM_USE]))
    if not valid.any():
        raise DataSourceError(f"{file}: no row with a provisioned CPU and memory size")
    n_unreported = int((~valid).sum())
    ts = a[_TS][valid].astype(np.int64)
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    cpu_cap, mem_cap = a[_CPU_CAP][valid][order], a[_MEM_CAP][valid][order]
    cpu = np.clip(a[_CPU_USE][valid][order] / cpu_cap, 0.0, 1.0)
    mem = np.clip(a[_MEM_USE][valid][order] / mem_cap, 0.0, 1.0)
    n_dup = int((np.diff(ts) == 0).sum())
    n_resizes = int(((np.diff(cpu_cap) != 0) | (np.diff(mem_cap) != 0)).sum())
    t0 = int(ts[0] // step_s * step_s)
    b = (ts - t0) // step_s
    n = int(b[-1]) + 1
    count = np.bincount(b, minlength=n)
    observed = count > 0
    safe = np.maximum(count, 1)
    cpu_g = np.bincount(b, weights=cpu, minlength=n) / safe
    mem_g = np.bincount(b, weights=mem, minlength=n) / safe
    cores = a[_CORES][valid]
    return VMSeries(
        vm=file.stem,
        path=file,
        t0=t0,
        step_s=step_s,
        cpu_frac=_fill(cpu_g, observed),
        mem_frac=_fill(mem_g, observed),
        observed=observed,
        cpu_cores=float(np.median(cores)) if cores.size else float("nan"),
        mem_gib=float(np.median(mem_cap)) / (1024.0 * 1024.0),
        n_rows=n_rows,
        n_duplicates=n_dup,
        n_unreported=n_unreported,
        n_resizes=n_resizes,
    )


def _natural_key(p: Path) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name))


def _files(folder: str | Path, pattern: str, data_dir: str | Path | None) -> list[Path]:
    text = str(folder)
    if any(ch in text for ch in "*?["):  # "bitbrains-rnd/2013-7/*.csv" given as one path
        folder, pattern = Path(text).parent, Path(text).name
    if str(folder) == DEFAULT_FOLDER:  # another slice holds another month's folder
        base = resolve_default(folder, data_dir, "bitbrains-rnd/*", dirs=True)
    else:
        base = resolve(folder, data_dir)
    if base.is_file():
        return [base]
    files = sorted((p for p in base.glob(pattern) if p.is_file()), key=_natural_key)
    if not files:
        raise DataSourceError(f"{base}: no file matches {pattern!r}")
    return files


def iter_bitbrains(
    folder: str | Path = DEFAULT_FOLDER,
    *,
    pattern: str = "*.csv",
    data_dir: str | Path | None = None,
    step_s: int = STEP_S,
    chunksize: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[VMSeries]:
    """Yield one :class:`VMSeries` per VM file, reading the files one at a time.

    Args:
        folder: a month folder (``bitbrains-rnd/2013-8``, absolute or inside
            ``data_dir``), a glob such as ``bitbrains-rnd/2013-7/*.csv``, or one file.
        pattern: file name pattern inside ``folder``.
        data_dir: where the traces live (default :func:`hydatis.config.data_dir`).
        step_s: grid step in seconds.
        chunksize: rows read at a time.
    """
    for file in _files(folder, pattern, data_dir):
        yield read_bitbrains_vm(file, step_s=step_s, chunksize=chunksize)


def load_bitbrains(
    folder: str | Path = DEFAULT_FOLDER,
    *,
    pattern: str = "*.csv",
    data_dir: str | Path | None = None,
    step_s: int = STEP_S,
) -> list[VMSeries]:
    """Read every VM file of a folder (see :func:`iter_bitbrains`)."""
    return list(iter_bitbrains(folder, pattern=pattern, data_dir=data_dir, step_s=step_s))
