"""Pipeline step: log a training to MLflow, register it, and promote it only through its
gate."""

from components.register.core import (
    MODEL_NAMES,
    Outcome,
    load_champion,
    register,
    tracking_uri,
)

__all__ = ["MODEL_NAMES", "Outcome", "load_champion", "register", "tracking_uri"]
