"""Hyperparameter search for the three models: Katib on a cluster, Optuna on one machine.

- :mod:`katib.spaces` — the search spaces, defined once in ``spaces.yaml``;
- :mod:`katib.objectives` — what a trial measures, on a validation split carved from
  the training side (and the held-out split, for the benchmark only), at a budget;
- :mod:`katib.trial` — the trial entry point ``python -m katib.trial MODEL --p=v ...``,
  printing ``name=value`` metric lines;
- :mod:`katib.experiments` — the Katib ``Experiment`` manifests (``katib/manifests/``);
- :mod:`katib.local` — the local Optuna (TPE) backend with a resumable SQLite study.

Importing this package loads none of Optuna, the Katib SDK or the trainers; each module
imports what it needs.
"""

from __future__ import annotations

from katib.spaces import MODELS, Param, Space, load_spaces, space

__all__ = ["MODELS", "Param", "Space", "load_spaces", "space"]
