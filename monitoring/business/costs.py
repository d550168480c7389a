"""The cost model's inputs: explicit, documented, overridable in a YAML file.

Why a file and not constants: what a node or a minute of unavailability costs differs per
organisation; the report computes savings from the *measured* differences between two
schedulers and these inputs, and shows how the result moves with each input
(:mod:`monitoring.business.report`'s sensitivity table), so the people who own the figures
can put in theirs. ``costs.yaml`` beside this module holds the defaults with their
sources; a file passed with ``--costs`` overrides any subset of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hydatis.errors import ConfigError
from hydatis.settings import read_yaml_mapping, validation_problems

__all__ = ["DEFAULT_COSTS_FILE", "HOURS_PER_YEAR", "MINUTES_PER_YEAR", "CostModel", "load_costs"]

DEFAULT_COSTS_FILE = Path(__file__).with_name("costs.yaml")
HOURS_PER_YEAR = 8760.0
MINUTES_PER_YEAR = HOURS_PER_YEAR * 60.0


class CostModel(BaseModel):
    """The inputs of the savings and ROI computation (see ``costs.yaml`` for the defaults
    and where they come from).

    Attributes:
        currency: ISO code shown beside every amount (a label on the metrics).
        node_hourly_cost: what one node of the cluster costs per hour (on-demand price,
            or amortised hardware + power + operations).
        unavailability_cost_per_minute: what one minute of the whole service being
            unavailable costs. The simulator's availability is a share of pod-time, so
            ``(1 - availability)`` of every minute counts as an unavailable minute.
        platform_hourly_cost: what HYDATIS itself costs to run per hour (the extender,
            the three model servers, their share of Prometheus, MLflow, Redis, and the
            retraining pipeline's compute).
        implementation_cost: a one-off cost (integration, migration) charged once in the
            period.
        period_years: the period savings and ROI are computed over.
        target_p95_utilization: the node-CPU p95 a cluster is sized to keep; "nodes
            needed" is the node count that brings each scheduler's measured p95 to it.
        fleet_nodes: scale the simulated cluster to this many nodes (None: the simulated
            cluster's size); node counts scale in proportion.
        sensitivity_factors: the multipliers applied to each input, one at a time, in
            the sensitivity table.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = Field("USD", min_length=1, max_length=8)
    node_hourly_cost: float = Field(..., ge=0)
    unavailability_cost_per_minute: float = Field(..., ge=0)
    platform_hourly_cost: float = Field(..., ge=0)
    implementation_cost: float = Field(0.0, ge=0)
    period_years: float = Field(1.0, gt=0)
    target_p95_utilization: float = Field(0.65, gt=0, le=1)
    fleet_nodes: int | None = Field(None, gt=0)
    sensitivity_factors: tuple[float, ...] = Field((0.5, 1.0, 2.0), min_length=1)

    def inputs(self) -> dict[str, float]:
        """The numeric inputs the sensitivity table varies, by name."""
        return {
            "node_hourly_cost": self.node_hourly_cost,
            "unavailability_cost_per_minute": self.unavailability_cost_per_minute,
            "platform_hourly_cost": self.platform_hourly_cost,
            "implementation_cost": self.implementation_cost,
            "target_p95_utilization": self.target_p95_utilization,
        }


def load_costs(path: str | Path | None = None, **overrides: Any) -> CostModel:
    """The defaults of ``costs.yaml``, overridden by ``path`` and then by ``overrides``.

    Raises:
        ConfigError: a file cannot be read, or a key is unknown or has a bad value (the
            message names the key and the file).
    """
    data = read_yaml_mapping(DEFAULT_COSTS_FILE)
    source = str(DEFAULT_COSTS_FILE.name)
    if path is not None:
        data.update(read_yaml_mapping(Path(path)))
        source = str(path)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return CostModel(**data)
    except ValidationError as exc:
        raise ConfigError(f"cost model ({source}): {validation_problems(exc)}") from exc
