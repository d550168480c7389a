"""Pipeline step: validate a cluster dataset before anything learns from it."""

from components.validate.core import validate_dataset

__all__ = ["validate_dataset"]
