"""Where the project finds its data, and other machine-level settings.

The real public traces are third-party data and never part of the repository: they are
read at run time from ``HYDATIS_DATA_DIR``, which defaults to ``../shared/data`` (relative
to the working directory) when that folder exists.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "DATA_DIR_ENV",
    "DEFAULT_DATA_DIR",
    "DEFAULT_WORK_DIR",
    "WORK_DIR_ENV",
    "data_dir",
    "require_data_dir",
    "work_dir",
]

DATA_DIR_ENV = "HYDATIS_DATA_DIR"
DEFAULT_DATA_DIR = Path("..") / "shared" / "data"
WORK_DIR_ENV = "HYDATIS_WORK_DIR"
DEFAULT_WORK_DIR = Path("out")


def data_dir() -> Path | None:
    """Return the directory holding the real traces, or None when there is none.

    ``HYDATIS_DATA_DIR`` wins when set (an empty value means "no data directory");
    otherwise ``../shared/data`` is used when it exists.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env is not None:
        if not env.strip():
            return None
        path = Path(env).expanduser()
        return path if path.is_dir() else None
    return DEFAULT_DATA_DIR.resolve() if DEFAULT_DATA_DIR.is_dir() else None


def require_data_dir() -> Path:
    """Return the data directory or raise a ConfigError saying how to provide it."""
    from hydatis.errors import ConfigError

    path = data_dir()
    if path is None:
        raise ConfigError(
            f"no trace data directory: set {DATA_DIR_ENV} to the folder holding the public "
            f"traces (alibaba-openb/, bitbrains-rnd/, ...) or place it at {DEFAULT_DATA_DIR}"
        )
    return path


def work_dir() -> Path:
    """Where the project keeps what it makes locally (MLflow store, models, reports):
    ``HYDATIS_WORK_DIR``, default ``./out``."""
    return Path(os.environ.get(WORK_DIR_ENV) or DEFAULT_WORK_DIR)
