"""Scheduled retraining on Kubeflow Pipelines: recurring runs of the compiled pipelines.

Two schedules, each a KFP *recurring run* of a compiled pipeline package:

- ``hydatis-retrain-daily`` — **incremental**, every day but Sunday at 02:00: the
  retraining pipeline (``hydatis-retraining``: train → evaluate → register behind the
  gate → deploy) on the latest dataset and feature table (``dataset_uri``,
  ``features_uri``), with the last search's hyperparameters; no extraction, no search.
- ``hydatis-retrain-weekly`` — **full**, Sundays at 02:00: the training pipeline
  (``hydatis-training``) from the cluster's own history (``source: prometheus``,
  ``days`` of it), with the hyperparameter search, then the same gate and deploy.

Both promote only through the pipelines' registry gate step; neither registers a model
any other way. The daily run skips Sunday so the two never overlap.

A schedule is written as what a user applies, in both of the forms KFP takes:

- ``<name>.create_recurring_run.json``: the keyword arguments of the kfp 2 SDK's
  ``kfp.Client.create_recurring_run`` (``pipeline_package_path`` relative to the file);
- ``<name>.recurring_run.json``: the ``v2beta1`` ``RecurringRun`` body the SDK POSTs to
  ``/apis/v2beta1/recurringruns`` (the pipeline spec inlined), built with the SDK's own
  API models, for ``curl`` or a GitOps tool.

Cron expressions are KFP's (robfig/cron): six fields, seconds first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydatis.errors import ConfigError

__all__ = [
    "DAILY_CRON",
    "WEEKLY_CRON",
    "Schedule",
    "apply_schedules",
    "create_recurring_run_kwargs",
    "default_schedules",
    "parse_cron",
    "recurring_run_body",
    "write_schedules",
]

#: 02:00 Monday to Saturday (seconds minutes hours day-of-month month day-of-week).
DAILY_CRON = "0 0 2 * * 1-6"
#: 02:00 on Sunday.
WEEKLY_CRON = "0 0 2 * * 0"
_FIELDS = (  # name, low, high
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 6),
)
_ITEM = re.compile(r"^(\*|\?|\d+(?:-\d+)?)(?:/(\d+))?$")


def parse_cron(expr: str) -> list[set[int]]:
    """The times a six-field KFP cron expression fires on, per field.

    Raises:
        ConfigError: not six fields, or a field out of its range (named).
    """
    parts = expr.split()
    if len(parts) != len(_FIELDS):
        raise ConfigError(f"cron {expr!r}: KFP wants 6 fields (seconds first), got {len(parts)}")
    out: list[set[int]] = []
    for text, (name, low, high) in zip(parts, _FIELDS, strict=True):
        values: set[int] = set()
        for item in text.split(","):
            match = _ITEM.match(item)
            if match is None:
                raise ConfigError(f"cron {expr!r}: {name} {item!r} is not a value, range or *")
            head, step = match.group(1), int(match.group(2) or 1)
            if head in ("*", "?"):
                lo, hi = low, high
            else:
                lo, _, hi_text = head.partition("-")
                lo, hi = int(lo), int(hi_text or lo)
            if not low <= lo <= hi <= high or step < 1:
                raise ConfigError(f"cron {expr!r}: {name} {item!r} outside {low}..{high}")
            values.update(range(lo, hi + 1, step))
        out.append(values)
    return out


@dataclass(frozen=True)
class Schedule:
    """One recurring run.

    Attributes:
        name: the recurring run's display name (and the files' stem).
        pipeline: ``retraining`` or ``training`` (a key of ``pipelines.PIPELINES``).
        cron: a six-field KFP cron expression.
        description: what it does, shown in the KFP UI.
        params: the pipeline's parameters (every key a parameter of the pipeline).
        max_concurrency: runs at once (1: a slow run delays, never doubles, the next).
        no_catchup: after a pause, run once, not once per missed slot.
    """

    name: str
    pipeline: str
    cron: str
    description: str
    params: Mapping[str, Any] = field(default_factory=dict)
    max_concurrency: int = 1
    no_catchup: bool = True


def default_schedules(
    *,
    dataset_uri: str,
    features_uri: str,
    prometheus_url: str,
    days: float = 30.0,
    deploy_target: str = "cluster",
    tune_trials: int = 20,
    daily_cron: str = DAILY_CRON,
    weekly_cron: str = WEEKLY_CRON,
) -> list[Schedule]:
    """The daily incremental and weekly full schedules.

    Args:
        dataset_uri, features_uri: where the daily run reads the latest dataset and
            feature table (object-store URIs the pipeline's importers read).
        prometheus_url: the cluster's Prometheus (the weekly run extracts from it).
        days: history the weekly run extracts.
        deploy_target: the deploy step's target (``cluster`` applies InferenceServices).
        tune_trials: search trials per model of the weekly run.
        daily_cron, weekly_cron: the schedules (six-field KFP cron).

    Raises:
        ConfigError: a missing URI or a bad cron expression (named).
    """
    for name, value in (
        ("dataset_uri", dataset_uri),
        ("features_uri", features_uri),
        ("prometheus_url", prometheus_url),
    ):
        if not value:
            raise ConfigError(f"{name} is empty: the scheduled runs need it")
    for cron in (daily_cron, weekly_cron):
        parse_cron(cron)
    return [
        Schedule(
            name="hydatis-retrain-daily",
            pipeline="retraining",
            cron=daily_cron,
            description="HYDATIS daily incremental retrain: the latest dataset and "
            "feature table, the last search's hyperparameters, promoted only through "
            "the registry gate.",
            params={
                "dataset_uri": dataset_uri,
                "features_uri": features_uri,
                "deploy_target": deploy_target,
            },
        ),
        Schedule(
            name="hydatis-retrain-weekly",
            pipeline="training",
            cron=weekly_cron,
            description="HYDATIS weekly full retrain: extract the cluster's history "
            "from Prometheus, search, train, promote only through the registry gate.",
            params={
                "source": "prometheus",
                "prometheus_url": prometheus_url,
                "days": float(days),
                "tune_trials": int(tune_trials),
                "deploy_target": deploy_target,
            },
        ),
    ]


def _check_params(schedule: Schedule) -> None:
    import inspect

    from pipelines import PIPELINES

    if schedule.pipeline not in PIPELINES:
        raise ConfigError(f"{schedule.name}: unknown pipeline {schedule.pipeline!r}")
    accepted = set(inspect.signature(PIPELINES[schedule.pipeline].pipeline_func).parameters)
    unknown = sorted(set(schedule.params) - accepted)
    if unknown:
        raise ConfigError(
            f"{schedule.name}: {', '.join(unknown)} not parameters of {schedule.pipeline}"
        )


def create_recurring_run_kwargs(
    schedule: Schedule,
    package_path: str | Path,
    *,
    experiment_id: str | None = None,
    pipeline_root: str | None = None,
    service_account: str | None = None,
) -> dict[str, Any]:
    """The keyword arguments of ``kfp.Client.create_recurring_run`` for ``schedule``."""
    _check_params(schedule)
    parse_cron(schedule.cron)
    return {
        "experiment_id": experiment_id,
        "job_name": schedule.name,
        "description": schedule.description,
        "cron_expression": schedule.cron,
        "max_concurrency": schedule.max_concurrency,
        "no_catchup": schedule.no_catchup,
        "params": dict(schedule.params),
        "pipeline_package_path": str(package_path),
        "enabled": True,
        "pipeline_root": pipeline_root,
        "service_account": service_account,
    }


def recurring_run_body(
    schedule: Schedule,
    package_path: str | Path,
    *,
    experiment_id: str | None = None,
    pipeline_root: str | None = None,
    service_account: str | None = None,
) -> dict[str, Any]:
    """The ``v2beta1`` ``RecurringRun`` JSON, as the SDK builds and sends it."""
    import kfp_server_api
    import yaml

    _check_params(schedule)
    parse_cron(schedule.cron)
    spec = yaml.safe_load(Path(package_path).read_text(encoding="utf-8"))
    body = kfp_server_api.V2beta1RecurringRun(
        experiment_id=experiment_id,
        mode=kfp_server_api.RecurringRunMode.ENABLE,
        pipeline_spec=spec,
        runtime_config=kfp_server_api.V2beta1RuntimeConfig(
            pipeline_root=pipeline_root, parameters=dict(schedule.params)
        ),
        display_name=schedule.name,
        description=schedule.description,
        no_catchup=schedule.no_catchup,
        trigger=kfp_server_api.V2beta1Trigger(
            cron_schedule=kfp_server_api.V2beta1CronSchedule(cron=schedule.cron)
        ),
        max_concurrency=schedule.max_concurrency,
        service_account=service_account,
    )
    return kfp_server_api.ApiClient().sanitize_for_serialization(body)


def write_schedules(
    out_dir: str | Path,
    schedules: list[Schedule],
    *,
    experiment_id: str | None = None,
    pipeline_root: str | None = None,
    service_account: str | None = None,
) -> list[Path]:
    """Compile the pipelines the schedules run into ``out_dir`` and write both forms of
    every schedule beside them; return the files written."""
    from pipelines import compile_pipeline

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    packages = {s.pipeline: compile_pipeline(s.pipeline, out) for s in schedules}
    written = list(dict.fromkeys(packages.values()))
    for s in schedules:
        opts = {
            "experiment_id": experiment_id,
            "pipeline_root": pipeline_root,
            "service_account": service_account,
        }
        kwargs = create_recurring_run_kwargs(s, packages[s.pipeline].name, **opts)
        body = recurring_run_body(s, packages[s.pipeline], **opts)
        for suffix, data in (("create_recurring_run", kwargs), ("recurring_run", body)):
            path = out / f"{s.name}.{suffix}.json"
            path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            written.append(path)
    return written


def apply_schedules(host: str, folder: str | Path, *, client: Any | None = None) -> list[str]:
    """Create the recurring runs written in ``folder`` on the KFP API at ``host`` with the
    SDK (``create_recurring_run`` with the saved arguments); return their IDs."""
    from kfp import Client

    folder = Path(folder)
    files = sorted(folder.glob("*.create_recurring_run.json"))
    if not files:
        raise ConfigError(f"{folder}: no *.create_recurring_run.json (write the schedules first)")
    kfp_client = client or Client(host=host)
    ids = []
    for path in files:
        kwargs = json.loads(path.read_text(encoding="utf-8"))
        kwargs["pipeline_package_path"] = str(folder / kwargs["pipeline_package_path"])
        run = kfp_client.create_recurring_run(**kwargs)
        ids.append(str(run.recurring_run_id))
    return ids
