"""Capacity forecasts: cluster and node-pool CPU and memory demand 24 h, 7 d or 30 d ahead,
with 80 % and 95 % intervals, and the nodes needed to keep the p95 utilisation at the
target.

Each series gets the model a rolling-origin backtest on its own history chooses among
statsforecast candidates (:mod:`~monitoring.forecast.models`), intervals sized from that
backtest's errors (:mod:`~monitoring.forecast.intervals`), and the node count from
:mod:`~monitoring.forecast.capacity`. History comes from Prometheus or a cluster dataset
(:mod:`~monitoring.forecast.sources`); see README.md.
"""

from monitoring.forecast.capacity import (
    DEFAULT_QUANTILE,
    DEFAULT_TARGET,
    CapacityNeed,
    capacity_need,
    nodes_for,
)
from monitoring.forecast.errors import ForecastError, ForecastInputError, HistoryTooShortError
from monitoring.forecast.evaluate import (
    Evaluation,
    OriginScore,
    evaluate_origins,
    held_out_origins,
)
from monitoring.forecast.forecaster import (
    DEFAULT_LEVELS,
    Forecast,
    ForecastResult,
    ForecastSettings,
    forecast_series,
    forecast_values,
    min_history_s,
)
from monitoring.forecast.models import BASE_MODELS, CANDIDATES, DEFAULT_CANDIDATES
from monitoring.forecast.report import forecast_table, write_forecast_html
from monitoring.forecast.series import HORIZONS, DemandSeries, parse_horizon, regular_series
from monitoring.forecast.sources import (
    ForecastQueries,
    dataset_demand,
    load_forecast_queries,
    prometheus_demand,
)

__all__ = [
    "BASE_MODELS",
    "CANDIDATES",
    "DEFAULT_CANDIDATES",
    "DEFAULT_LEVELS",
    "DEFAULT_QUANTILE",
    "DEFAULT_TARGET",
    "HORIZONS",
    "CapacityNeed",
    "DemandSeries",
    "Evaluation",
    "Forecast",
    "ForecastError",
    "ForecastInputError",
    "ForecastQueries",
    "ForecastResult",
    "ForecastSettings",
    "HistoryTooShortError",
    "OriginScore",
    "capacity_need",
    "dataset_demand",
    "evaluate_origins",
    "forecast_series",
    "forecast_table",
    "forecast_values",
    "held_out_origins",
    "load_forecast_queries",
    "min_history_s",
    "nodes_for",
    "parse_horizon",
    "prometheus_demand",
    "regular_series",
    "write_forecast_html",
]
