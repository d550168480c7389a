"""The local search backend: Optuna's TPE over the same spaces, calling the same trial
entry point, with the study stored in SQLite so that it can be resumed.

Each trial runs :func:`katib.trial.main` in-process with the suggested values formatted
as the command-line text Katib would substitute, and reads the metrics back from its
``name=value`` lines with Katib's filter — so the local and the cluster search see the
same entry point, parameters and metrics. The data is prepared once per study
(:func:`katib.objectives.prepare`), which a process per trial could not share.

- Study: ``<work dir>/tuning/<model>.db`` (SQLite), study name ``hydatis-<model>``.
  A new study first evaluates the trainer's defaults (an enqueued trial), so the best
  is never worse than the defaults on the validation split. ``resume=True`` continues
  the stored study (same budget, seed and repeats; trials left running by a killed
  process are marked failed); otherwise any stored study of the model is replaced.
- Result: ``<work dir>/tuning/<model>_best.json``::

      {"model": "load", "metric": "load_cpu_wape", "direction": "minimize",
       "value": 0.153, "params": {...trainer params...}, "space_values": {...},
       "default_value": 0.157, "budget": "small", "budget_knobs": {...}, "seed": 0,
       "repeats": 1, "trials": 12, "best_trial": 7, "study": "hydatis-load",
       "storage": "sqlite:///.../load.db", "mlflow_run_id": "...", "created": "..."}

  ``params`` go unchanged into the trainer's ``params=`` (``train_load``,
  ``train_anomaly``, ``train_placement``); :func:`load_best` reads the file back.
- MLflow: one run in the experiment ``hydatis-tuning`` (tracking URI as the registry's,
  :func:`components.register.core.tracking_uri`) with the best parameters, the best and
  default values, the study's tags, the JSON file and the trials table as artifacts.
"""

from __future__ import annotations

import io
import json
import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hydatis.config import work_dir
from hydatis.errors import ConfigError, HydatisError
from katib.objectives import budget_dict, prepare
from katib.spaces import Param, Space, space
from katib.trial import main as trial_main
from katib.trial import parse_metrics, trial_args

__all__ = [
    "DEFAULT_BUDGET",
    "EXPERIMENT",
    "TrialFailedError",
    "TuneResult",
    "TuningError",
    "best_path",
    "improvement_pct",
    "load_best",
    "log_to_mlflow",
    "study_name",
    "study_path",
    "tune",
    "tuning_dir",
]

log = logging.getLogger(__name__)

EXPERIMENT = "hydatis-tuning"
DEFAULT_BUDGET = "small"
_DEFAULTS_ATTR = "trainer_defaults"


class TuningError(HydatisError):
    """A search could not run or produced nothing (no trial completed, a resumed study
    of another budget, ...)."""


class TrialFailedError(Exception):
    """One trial failed (bad parameter combination, non-finite objective): the study
    records it as failed and goes on."""


@dataclass
class TuneResult:
    """What a search found (values on the validation split)."""

    model: str
    metric: str
    direction: str
    value: float
    params: dict[str, Any]
    space_values: dict[str, Any]
    default_value: float | None
    trials: int
    best_trial: int
    budget: str
    seed: int
    repeats: int
    storage: str
    best_path: Path
    seconds: float
    mlflow_run_id: str | None = None
    failed: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def improvement_pct(self) -> float | None:
        """Relative gain of the best over the defaults on the validation split (%)."""
        if self.default_value is None or not self.default_value:
            return None
        return improvement_pct(self.value, self.default_value, self.direction)


def improvement_pct(value: float, baseline: float, direction: str) -> float:
    """How much better ``value`` is than ``baseline``, in % of the baseline: for a
    minimised metric ``100 · (1 − value / baseline)`` (the design's improvement), for a
    maximised one ``100 · (value / baseline − 1)``."""
    if not baseline or not math.isfinite(baseline) or not math.isfinite(value):
        return math.nan
    if direction == "minimize":
        return 100.0 * (1.0 - value / baseline)
    return 100.0 * (value / baseline - 1.0)


def tuning_dir(work: str | Path | None = None) -> Path:
    """``<work dir>/tuning``: where the studies and best-parameter files live."""
    return Path(work) / "tuning" if work is not None else work_dir() / "tuning"


def study_path(model: str, work: str | Path | None = None) -> Path:
    """The SQLite file of ``model``'s study."""
    return tuning_dir(work) / f"{model}.db"


def best_path(model: str, work: str | Path | None = None) -> Path:
    """The JSON file with ``model``'s best parameters."""
    return tuning_dir(work) / f"{model}_best.json"


def study_name(model: str) -> str:
    """The Optuna study's name: ``hydatis-<model>``."""
    return f"hydatis-{model}"


def load_best(model: str, work: str | Path | None = None) -> dict[str, Any] | None:
    """The best-parameters record of ``model`` (module docstring), or None if none.

    Raises:
        ConfigError: the file exists but is not a record for ``model``.
    """
    path = best_path(model, work)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(record, dict) or record.get("model") != model or "params" not in record:
        raise ConfigError(f"{path}: not a best-parameters record of {model}")
    return record


def _suggest(trial: Any, p: Param) -> Any:
    if p.type == "categorical":
        return trial.suggest_categorical(p.name, list(p.choices))
    assert p.min is not None and p.max is not None
    if p.type == "int":
        return trial.suggest_int(p.name, int(p.min), int(p.max), log=p.log)
    return trial.suggest_float(p.name, p.min, p.max, log=p.log)


def _open_study(
    sp: Space, path: Path, *, resume: bool, budget: str, seed: int, repeats: int, startup: int
) -> Any:
    import optuna

    if path.exists() and not resume:
        log.info("tune %s: replacing the stored study %s (no resume)", sp.model, path)
        path.unlink()
    fresh = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{path.resolve()}")
    name = study_name(sp.model)
    try:
        done = 0 if fresh else len(optuna.load_study(study_name=name, storage=storage).trials)
    except KeyError as exc:
        raise TuningError(f"{path} holds no study {name}: start over without --resume") from exc
    # A resumed study gets a sampler seeded past its history, so its random start does
    # not repeat the draws of the first session.
    sampler = optuna.samplers.TPESampler(seed=seed + done, n_startup_trials=startup)
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=sp.objective.direction,
        sampler=sampler,
        load_if_exists=True,
    )
    if fresh:
        study.set_user_attr("model", sp.model)
        study.set_user_attr("budget", budget)
        study.set_user_attr("seed", seed)
        study.set_user_attr("repeats", repeats)
        study.set_user_attr("metric", sp.objective.metric)
        study.enqueue_trial(sp.defaults(), user_attrs={_DEFAULTS_ATTR: True})
        return study
    stored = study.user_attrs
    settings = {"budget": budget, "seed": seed, "repeats": repeats, "metric": sp.objective.metric}
    for key, value in settings.items():
        if stored.get(key) != value:
            raise TuningError(
                f"{path}: the stored study has {key}={stored.get(key)!r}, not {value!r}; "
                "resume it with the same settings or start over without --resume"
            )
    # A process killed mid-trial leaves it RUNNING; nothing else runs this study.
    sid = storage.get_study_id_from_name(name)
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        tid = storage.get_trial_id_from_study_id_trial_number(sid, t.number)
        storage.set_trial_state_values(tid, optuna.trial.TrialState.FAIL)
    return study


def tune(
    model: str,
    *,
    trials: int,
    budget: str = DEFAULT_BUDGET,
    seed: int = 0,
    repeats: int = 1,
    resume: bool = False,
    work: str | Path | None = None,
    data_dir: str | Path | None = None,
    mlflow: bool = True,
    tracking_uri: str | None = None,
    startup_trials: int | None = None,
    on_trial: Callable[[int, dict[str, Any]], None] | None = None,
    trial_progress: Callable[[float, str], None] | None = None,
) -> TuneResult:
    """Search ``model``'s space for ``trials`` more trials; write and log the best.

    Args:
        model: ``load``, ``anomaly`` or ``placement``.
        trials: trials to run in this call (the defaults' trial counts as one).
        budget: the trial budget (``tiny``, ``small``, ``full``).
        seed: seeds the sampler and every trial's trainer.
        repeats: trainings per trial (seeds ``seed, seed + 1, ...``), averaged.
        resume: continue the stored study instead of starting over.
        work: the work directory (default :func:`hydatis.config.work_dir`).
        data_dir: the trace directory (default: the configured one).
        mlflow: log the result to MLflow.
        tracking_uri: the MLflow tracking URI (default: as the registry's).
        startup_trials: random trials before TPE models the history (default: a third
            of ``trials``, between 4 and 10).
        on_trial: called after each trial with its number and a summary (``state``,
            ``value``, ``best``, ``params``).
        trial_progress: called with the running trial's fraction done and activity.

    Returns:
        The :class:`TuneResult`.

    Raises:
        TuningError: no trial completed, or ``resume`` with other settings.
        HydatisError: the data cannot be read (raised before any trial runs).
    """
    import optuna

    if trials <= 0:
        raise ConfigError(f"trials must be > 0, got {trials}")
    t0 = time.perf_counter()
    sp = space(model)
    budget_dict(model, budget)  # checks the budget's name before anything is written
    path = study_path(model, work)
    startup = startup_trials or max(4, min(10, trials // 3))
    # The data first: without it nothing is written (no empty study left behind).
    data = prepare(model, budget, seed=seed, split="valid", data_dir=data_dir)
    study = _open_study(
        sp, path, resume=resume, budget=budget, seed=seed, repeats=repeats, startup=startup
    )

    def objective(trial: Any) -> float:
        values = {p.name: _suggest(trial, p) for p in sp.params}
        texts = {p.name: p.text(values[p.name]) for p in sp.params}
        buffer = io.StringIO()
        try:
            code = trial_main(
                trial_args(model, texts, budget=budget, seed=seed, repeats=repeats),
                out=buffer,
                data=data,
                progress=trial_progress,
            )
        except HydatisError:
            raise
        except Exception as exc:  # one bad combination must not end the search
            log.warning("tune %s: trial %d failed: %s", model, trial.number, exc)
            raise TrialFailedError(str(exc)) from exc
        metrics = parse_metrics(buffer.getvalue())
        if code != 0 or sp.objective.metric not in metrics:
            raise TrialFailedError(f"exit status {code}, metrics {sorted(metrics)}")
        for name, value in metrics.items():
            trial.set_user_attr(name, value)
        return metrics[sp.objective.metric]

    def callback(study: Any, frozen: Any) -> None:
        if on_trial is None:
            return
        try:
            best = study.best_value
        except ValueError:  # no completed trial yet
            best = None
        on_trial(
            frozen.number,
            {
                "state": frozen.state.name,
                "value": frozen.value,
                "best": best,
                "params": dict(frozen.params),
            },
        )

    study.optimize(objective, n_trials=trials, catch=(TrialFailedError,), callbacks=[callback])
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise TuningError(f"tune {model}: no trial completed in {path}")
    best = study.best_trial
    default_value = next((t.value for t in complete if t.user_attrs.get(_DEFAULTS_ATTR)), None)
    values = {p.name: best.params[p.name] for p in sp.params}
    result = TuneResult(
        model=model,
        metric=sp.objective.metric,
        direction=sp.objective.direction,
        value=float(best.value),
        params=sp.to_trainer(values),
        space_values=values,
        default_value=None if default_value is None else float(default_value),
        trials=len(complete),
        best_trial=best.number,
        budget=budget,
        seed=seed,
        repeats=repeats,
        storage=f"sqlite:///{path.resolve()}",
        best_path=best_path(model, work),
        seconds=time.perf_counter() - t0,
        failed=len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))),
        history=[
            {"number": t.number, "value": t.value, "params": dict(t.params), **t.user_attrs}
            for t in complete
        ],
    )
    _write_best(result)
    if mlflow:
        result.mlflow_run_id = log_to_mlflow(result, study, tracking_uri=tracking_uri)
        _write_best(result)
    return result


def _record(result: TuneResult) -> dict[str, Any]:
    return {
        "model": result.model,
        "metric": result.metric,
        "direction": result.direction,
        "value": result.value,
        "params": result.params,
        "space_values": result.space_values,
        "default_value": result.default_value,
        "budget": result.budget,
        "budget_knobs": budget_dict(result.model, result.budget),
        "seed": result.seed,
        "repeats": result.repeats,
        "trials": result.trials,
        "best_trial": result.best_trial,
        "study": study_name(result.model),
        "storage": result.storage,
        "mlflow_run_id": result.mlflow_run_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _write_best(result: TuneResult) -> None:
    result.best_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = result.best_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_record(result), indent=2, sort_keys=False) + "\n")
    tmp.replace(result.best_path)  # a reader never sees half a file


def _experiment_id(client: Any, uri: str) -> str:
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    location = None
    if uri.startswith("sqlite:///"):  # keep artifacts beside the local store, as register does
        location = (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
    try:
        return client.create_experiment(EXPERIMENT, artifact_location=location)
    except MlflowException:  # created meanwhile by another process
        return client.get_experiment_by_name(EXPERIMENT).experiment_id


def log_to_mlflow(result: TuneResult, study: Any = None, *, tracking_uri: str | None = None) -> str:
    """Log a search's best parameters and values as one run of ``hydatis-tuning``.

    Returns:
        The run id.
    """
    from mlflow.entities import Metric, RunTag
    from mlflow.entities import Param as MlflowParam
    from mlflow.tracking import MlflowClient

    from components.register.core import tracking_uri as resolve_uri

    uri = resolve_uri(tracking_uri)
    client = MlflowClient(uri)
    run = client.create_run(
        _experiment_id(client, uri),
        run_name=f"tune-{result.model}",
        tags={
            "model": result.model,
            "metric": result.metric,
            "direction": result.direction,
            "budget": result.budget,
            "study": study_name(result.model),
            "storage": result.storage,
        },
    )
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(f"best_{result.metric}", result.value, now, 0)]
    metrics.append(Metric("trials", float(result.trials), now, 0))
    metrics.append(Metric("failed_trials", float(result.failed), now, 0))
    metrics.append(Metric("tuning_seconds", result.seconds, now, 0))
    if result.default_value is not None:
        metrics.append(Metric(f"default_{result.metric}", result.default_value, now, 0))
        gain = result.improvement_pct
        if gain is not None and math.isfinite(gain):
            metrics.append(Metric("valid_improvement_pct", gain, now, 0))
    params = [MlflowParam(k, str(v)[:500]) for k, v in result.params.items()]
    params += [
        MlflowParam("seed", str(result.seed)),
        MlflowParam("best_trial", str(result.best_trial)),
    ]
    client.log_batch(
        run_id, metrics=metrics, params=params, tags=[RunTag("best_path", str(result.best_path))]
    )
    with tempfile.TemporaryDirectory(prefix="hydatis-tune-") as tmp:
        record = Path(tmp) / f"{result.model}_best.json"
        record.write_text(json.dumps({**_record(result), "mlflow_run_id": run_id}, indent=2))
        client.log_artifact(run_id, str(record))
        if study is not None:
            table = Path(tmp) / f"{result.model}_trials.csv"
            study.trials_dataframe().to_csv(table, index=False)
            client.log_artifact(run_id, str(table))
    client.set_terminated(run_id)
    return run_id
