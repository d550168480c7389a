"""Pipeline step: the offline feature table and the training labels of a dataset."""

from components.build_features.core import build_features

__all__ = ["build_features"]
