"""KServe predictor of the placement agent: one candidate node per row -> its Q value.

Input: the 26 placement features (:data:`hydatis.models.placement_features.FEATURES`
order, or named columns), one row per candidate node for the pod being placed; NaN is
read as 0, as :func:`placement_features` writes it. Output: ``q_values``, one per row
(v1: ``[q, ...]``); the extender ranks candidates by it. One batched
:meth:`PlacementAgent.q_values` forward pass per request — this is the per-pod call on
the scheduling path, so nothing else happens per request.

Torch runs on ``--threads`` intra-op threads (one by default): a forward pass over 500
rows takes well under a millisecond on one core.

Run::

    python -m serving.placement_agent --model_source models:/hydatis-placement-agent@champion \
        --http_port 8093 --host 127.0.0.1
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import torch

from hydatis.models.placement_agent import PlacementAgent
from hydatis.models.placement_features import FEATURES
from serving._base import HydatisModel
from serving._server import main

__all__ = ["PlacementAgentModel"]

log = logging.getLogger(__name__)


class PlacementAgentModel(HydatisModel):
    """Serves the placement agent (DQN): a Q value per candidate node."""

    kind = "placement"
    OUTPUTS = (("q_values", "FP32"),)

    @classmethod
    def default_columns(cls) -> list[str]:
        """The 26 placement features, in order."""
        return list(FEATURES)

    def load_model(self, path: Path) -> PlacementAgent:
        """Read the agent ``PlacementAgent.save`` wrote; eval mode, ``threads`` for torch."""
        torch.set_num_threads(self.threads)
        agent = PlacementAgent.load(path)
        agent.q_net_.eval()
        return agent

    def model_features(self) -> list[str] | None:
        """FEATURES when the agent was built for them (the agent stores no names)."""
        if self.model.d_in_ == len(FEATURES):
            return list(FEATURES)
        log.warning(
            "agent takes %d columns, not the %d placement features: requests must send "
            "its own columns",
            self.model.d_in_,
            len(FEATURES),
        )
        return None

    def n_features(self) -> int:
        """The agent's input width."""
        return int(self.model.d_in_)

    def infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """One forward pass; NaN features count as 0 (as the feature builder writes them)."""
        if np.isnan(x).any():
            x = np.nan_to_num(x, nan=0.0)
        return {"q_values": self.model.q_values(x)}

    def v1_predictions(self, outputs: dict[str, np.ndarray]) -> list:
        """``[q, ...]``."""
        return outputs["q_values"].tolist()


if __name__ == "__main__":
    sys.exit(main(PlacementAgentModel))
