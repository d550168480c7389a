"""The business report: two schedulers measured on the same workload, what the difference
is worth under an explicit cost model, and the same figures as metrics for the dashboard.

Example:
    >>> from monitoring.business import business_report, load_costs
    >>> report = business_report(["out/simulate"], load_costs())  # doctest: +SKIP
"""

from monitoring.business.costs import DEFAULT_COSTS_FILE, CostModel, load_costs
from monitoring.business.metrics import business_samples, write_openmetrics, write_prometheus_text
from monitoring.business.render import (
    figures_table,
    savings_table,
    sensitivity_table,
    write_html,
    write_json,
)
from monitoring.business.report import FIGURES, BusinessReport, Comparison, business_report

__all__ = [
    "DEFAULT_COSTS_FILE",
    "FIGURES",
    "BusinessReport",
    "Comparison",
    "CostModel",
    "business_report",
    "business_samples",
    "figures_table",
    "load_costs",
    "savings_table",
    "sensitivity_table",
    "write_html",
    "write_json",
    "write_openmetrics",
    "write_prometheus_text",
]
