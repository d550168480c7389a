"""Pipeline step: train the placement agent (DQN) and evaluate it against the baselines."""

from components.train_placement.core import train_placement

__all__ = ["train_placement"]
