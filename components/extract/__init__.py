"""The extract step: a cluster's history from Prometheus into the cluster dataset
(see README.md). The kfp wrapper lives in ``component.py``; ``core`` needs no kfp."""

from components.extract.core import (
    DEFAULT_CHUNK_S,
    DEFAULT_MIN_COMPLETENESS,
    DEFAULT_STEP_S,
    DataQualityError,
    ProgressFn,
    extract,
    quality_report,
    write_quality_report,
)

__all__ = [
    "DEFAULT_CHUNK_S",
    "DEFAULT_MIN_COMPLETENESS",
    "DEFAULT_STEP_S",
    "DataQualityError",
    "ProgressFn",
    "extract",
    "quality_report",
    "write_quality_report",
]
