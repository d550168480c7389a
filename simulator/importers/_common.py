"""Helpers the trace importers share: locating a file, chunked CSV reading that reports
bad input by file, line and column."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hydatis.config import data_dir as _configured_data_dir
from hydatis.errors import DataSourceError

DEFAULT_CHUNK_ROWS = 200_000


log = logging.getLogger(__name__)


def resolve(path: str | Path, data_dir: str | Path | None = None) -> Path:
    """Return ``path`` itself when it exists, else ``data_dir / path``.

    ``data_dir`` defaults to :func:`hydatis.config.data_dir`.

    Raises:
        DataSourceError: neither exists.
    """
    p = Path(path).expanduser()
    if p.exists():
        return p
    base = Path(data_dir) if data_dir is not None else _configured_data_dir()
    if base is not None and not p.is_absolute() and (base / p).exists():
        return base / p
    where = f" (looked in {base})" if base is not None else " (no data directory configured)"
    raise DataSourceError(f"{path}: file or folder not found{where}")


def resolve_default(
    path: str | Path, data_dir: str | Path | None, pattern: str, *, dirs: bool = False
) -> Path:
    """A default name, or the first match of ``pattern`` when that name is not there.

    Defaults name the files of one slice (``bitbrains-rnd/2013-7``,
    ``openb_pod_list_default.csv``); another slice of the same source (another month,
    another pod-list mix) has other names. Only defaults go through here: a name the user
    gives must exist.

    Raises:
        DataSourceError: neither the name nor anything matching ``pattern`` exists.
    """
    try:
        return resolve(path, data_dir)
    except DataSourceError as err:
        base = Path(data_dir) if data_dir is not None else _configured_data_dir()
        if base is None:
            raise
        found = sorted(p for p in base.glob(pattern) if (p.is_dir() if dirs else p.is_file()))
        if not found:
            raise DataSourceError(f"{err}; nothing matches {pattern!r} either") from None
        log.info("%s not found; using %s (first match of %s)", path, found[0], pattern)
        return found[0]


def read_csv_chunks(
    path: Path,
    *,
    columns: Sequence[str],
    numeric: Sequence[str],
    header: bool = True,
    sep: str = ",",
    required: Sequence[str] = (),
    chunksize: int = DEFAULT_CHUNK_ROWS,
    nonnegative: Sequence[str] = (),
    string: Sequence[str] = (),
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Read a CSV in chunks, yielding ``(first_line, chunk)``.

    ``first_line`` is the 1-based line number in the file of the chunk's first row, so a
    row at position ``i`` of the chunk is on line ``first_line + i`` (blank lines aside).
    Column names are stripped of surrounding whitespace. With ``header`` the file must
    have every name in ``columns``; without, ``columns`` names the file's columns in order.

    Raises:
        DataSourceError: the file is unreadable, a column is missing, a ``numeric``
            value does not parse, a ``required`` value is empty, or a ``nonnegative``
            value is negative; the message names the file, the line and the column.
    """
    string_cols = {c: str for c in string}
    try:
        if header:
            head = pd.read_csv(path, sep=sep, nrows=0, skipinitialspace=True)
            names = [str(c).strip() for c in head.columns]
            missing = [c for c in columns if c not in names]
            if missing:
                raise DataSourceError(
                    f"{path}: line 1: missing column(s) {missing}; header has {names}"
                )
            reader = pd.read_csv(
                path,
                sep=sep,
                header=0,
                names=names,
                usecols=list(columns),
                skipinitialspace=True,
                chunksize=chunksize,
                dtype=string_cols or None,
            )
            first = 2
        else:
            reader = pd.read_csv(
                path,
                sep=sep,
                header=None,
                names=list(columns),
                skipinitialspace=True,
                chunksize=chunksize,
                dtype=string_cols or None,
                index_col=False,
            )
            first = 1
        for chunk in reader:
            _check_chunk(path, chunk, first, numeric, required, nonnegative)
            yield first, chunk
            first += len(chunk)
    except DataSourceError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataSourceError(f"{path}: not a readable CSV file: {exc}") from exc
    except OSError as exc:
        raise DataSourceError(f"{path}: cannot read: {exc}") from exc


def _check_chunk(
    path: Path,
    chunk: pd.DataFrame,
    first: int,
    numeric: Sequence[str],
    required: Sequence[str],
    nonnegative: Sequence[str],
) -> None:
    for col in numeric:
        s = chunk[col]
        if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
            coerced = pd.to_numeric(s, errors="coerce")
            bad = np.flatnonzero((coerced.isna() & s.notna()).to_numpy())
            if bad.size:
                i = int(bad[0])
                raise DataSourceError(
                    f"{path}: line {first + i}, column '{col}': "
                    f"not a number: {str(s.iloc[i]).strip()!r}"
                )
            chunk[col] = coerced
    for col in required:
        bad = np.flatnonzero(chunk[col].isna().to_numpy())
        if bad.size:
            raise DataSourceError(f"{path}: line {first + int(bad[0])}, column '{col}': empty")
    for col in nonnegative:
        values = chunk[col].to_numpy(dtype="float64", na_value=np.nan)
        bad = np.flatnonzero(values < 0)
        if bad.size:
            i = int(bad[0])
            raise DataSourceError(
                f"{path}: line {first + i}, column '{col}': negative value {values[i]}"
            )


def read_csv_checked(path: Path, **kwargs) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a whole (small) CSV through :func:`read_csv_chunks`; also return each row's
    line number."""
    frames, lines = [], []
    for first, chunk in read_csv_chunks(path, **kwargs):
        frames.append(chunk)
        lines.append(np.arange(first, first + len(chunk)))
    if not frames:
        cols = list(kwargs["columns"])
        return pd.DataFrame(columns=cols), np.zeros(0, dtype=np.int64)
    return pd.concat(frames, ignore_index=True), np.concatenate(lines)
