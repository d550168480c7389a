"""Node features: one function for the offline training table and the online vector.

:func:`node_features` computes the features (every node at every grid step, or one row
per node at an instant) with the same code on both paths; :func:`node_labels` builds the
matching training targets; :data:`FEATURES` is the catalogue that ``FEATURES.md``,
``hydatis features list`` and the Feast feature views are generated from.
"""

from __future__ import annotations

from hydatis.features.compute import node_features
from hydatis.features.labels import node_labels
from hydatis.features.specs import FEATURES, FeatureSpec, feature_names, features_markdown

__all__ = [
    "FEATURES",
    "FeatureSpec",
    "feature_lines",
    "feature_names",
    "features_markdown",
    "node_features",
    "node_labels",
]


def feature_lines() -> list[str]:
    """One line per feature for ``hydatis features list``: name, two spaces, description."""
    return [f"{f.name}  {f.description}" for f in FEATURES]
