"""The ML scheduler's processes for a replay: three model servers and the extender.

``hydatis simulate --schedulers ...,ml`` needs what a cluster would run beside
kube-scheduler: the load predictor, anomaly detector and placement agent behind KServe
model servers, and the extender (``scheduler_shim``) calling them. :func:`ml_stack`
starts them as separate processes on loopback, waits until each answers, yields the
extender's URL (in an :class:`MLStack`) and stops everything on leaving the block, error
or not::

    with ml_stack(seed=0) as stack:
        sched = make_scheduler("ml", url=stack.url, **scheduler_context(ds))

Models, per kind: an explicit source (a model directory or ``models:/`` URI) if given;
else the registry's ``champion`` (pinned to its version number for the run) when the
local MLflow registry has one; else a **quick model** trained here (:func:`quick_models`)
on a *training replay*: the same trace source drawn with seed ``seed + 1000`` (other
workload copies and usage offsets, and with ``nodes`` set another node sample), replayed
with the default scheduler. The evaluated run never feeds training: the models see
neither its pods, nor its usage, nor its time. The quick configuration (about 35 s on
two cores): 100 nodes × 12 h of training replay; load predictor 40 rounds of depth 4
(300 s horizon, 60 s grid); anomaly detector 3 forests × 50 trees with the cluster
model's derived columns; placement agent 12 episodes over four 2-hour windows. They are
demonstration models, not the registered ones (``hydatis train`` makes those).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from hydatis.config import work_dir
from hydatis.errors import HydatisError

__all__ = [
    "ML_VARIANTS",
    "QUICK",
    "MLStack",
    "MLStackError",
    "champion_sources",
    "ml_stack",
    "quick_models",
]

log = logging.getLogger(__name__)

KINDS = ("load", "anomaly", "placement")
#: The quick models' configuration (see the module docstring).
QUICK: dict[str, Any] = {
    "seed_offset": 1000,
    "nodes": 100,
    "horizon_s": 12 * 3600.0,
    "feature_step_s": 60.0,
    "load_horizon_s": 300.0,
    "load_rounds": 40,
    "load_depth": 4,
    "anomaly_forests": 3,
    "anomaly_trees": 50,
    "agent_episodes": 12,
    "agent_windows": 4,
    "agent_window_s": 7200.0,
    "agent_epsilon_decay_episodes": 8,
}
#: Extender settings for a replay (others: the shim's defaults). The node-state push is
#: synchronous, so the refresh's model calls may take their time without delaying any
#: decision; the agent keeps a per-pod deadline a cluster would use.
#: The extender as the simulator runs it: state pushed by the simulator; per-pod timeouts
#: wider than a cluster's (the replay shares two cores with the model servers, and a
#: timeout there would make runs depend on the machine's load), still inside the simulated
#: kube-scheduler's 0.5 s ``httpTimeout``.
SHIM_SETTINGS: dict[str, Any] = {
    "source": "push",
    "model_timeout_s": 30.0,
    "agent_timeout_s": 0.25,
    "deadline_s": 0.4,
}
#: Extender settings of the ML scheduler's ablations (``simulator.schedulers.ML_VARIANTS``),
#: over :data:`SHIM_SETTINGS` and the shim's defaults. A part left out has weight 0 and
#: its filter off: the load part owns the hot filter, the anomaly part the anomalous one.
ML_VARIANTS: dict[str, dict[str, Any]] = {
    "ml": {},
    "ml-load": {
        "weights": {"load": 1.0, "agent": 0.0, "anomaly": 0.0},
        "filter_anomalous": False,
    },
    "ml-agent": {
        "weights": {"load": 0.0, "agent": 1.0, "anomaly": 0.0},
        "filter_hot": False,
        "filter_anomalous": False,
    },
    "ml-anomaly": {
        "weights": {"load": 0.0, "agent": 0.0, "anomaly": 1.0},
        "filter_hot": False,
        "filter_anomalous": True,
    },
    "ml-nolag": {"lag_compensation": False},
}
#: Knobs naming other files of the composite trace's sources (``default_dataset``).
TRACE_FILE_KNOBS = ("pod_list", "node_list", "bitbrains_dir")
SHIM_READY_TIMEOUT_S = 60.0
_STOP_GRACE_S = 10.0
_ROOT = Path(__file__).resolve().parent.parent  # so the children import this very tree

Progress = Callable[[str], None]


class MLStackError(HydatisError):
    """A part of the ML stack could not be started."""


@dataclass(frozen=True)
class MLStack:
    """The running stack.

    Attributes:
        url: the extender's base URL (the ML scheduler's ``url``).
        variant_urls: ML scheduler name (``ml`` and each variant asked for) -> the base
            URL of the extender configured for it.
        model_urls: kind -> model server base URL.
        sources: kind -> what each server loaded (a directory or ``models:/NAME/VERSION``).
        origin: kind -> ``given``, ``registry`` or ``quick``.
        log_dir: where the servers' and the extender's logs are.
    """

    url: str
    variant_urls: dict[str, str]
    model_urls: dict[str, str]
    sources: dict[str, str]
    origin: dict[str, str]
    log_dir: Path


# --------------------------------------------------------------------------- models


def champion_sources(alias: str = "champion", tracking_uri: str | None = None) -> dict[str, str]:
    """``models:/NAME/VERSION`` of each kind whose ``alias`` exists in the registry (the
    version pinned, so the run names exactly what it used); kinds without one are left
    out, as is everything when there is no registry."""
    from serving._registry import MODEL_NAMES, resolve_ref
    from serving.errors import ServingError

    found = {}
    for kind in KINDS:
        try:
            ref = resolve_ref(MODEL_NAMES[kind], alias=alias, tracking_uri=tracking_uri)
        except ServingError as exc:
            log.info("no %s %s in the registry: %s", kind, alias, exc)
            continue
        found[kind] = ref.uri
    return found


def _quick_key(seed: int, knobs: Mapping[str, Any]) -> str:
    from hydatis.config import data_dir

    base = data_dir()
    # the data directory itself is part of the key: another one laid out the same way
    # holds other slices, and models trained on one must not be reused for the other
    source = "synthetic" if knobs.get("synthetic") or base is None else f"composite:{base}"
    text = json.dumps({"seed": seed, "knobs": dict(knobs), "quick": QUICK, "src": source})
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def quick_models(
    out_dir: str | Path,
    *,
    seed: int = 0,
    knobs: Mapping[str, Any] | None = None,
    kinds: tuple[str, ...] = KINDS,
    progress: Progress | None = None,
) -> dict[str, Path]:
    """Train quick models on a training replay and save them (see the module docstring).

    Args:
        out_dir: where ``<kind>/`` model directories go; a folder already holding models
            of the same configuration (``quick.json``) is reused.
        seed: the evaluated run's seed; training uses ``seed + QUICK["seed_offset"]``.
        knobs: ``load_factor``, ``usage_scale``, ``synthetic`` (and any of
            :data:`TRACE_FILE_KNOBS`) of the evaluated trace, so training sees the same
            kind of load from the same sources (nodes and horizon are QUICK's).
        kinds: which models to train.
        progress: called with a line per step.

    Returns:
        kind -> model directory.
    """
    import numpy as np
    import pandas as pd
    import torch

    from components.train_anomaly.core import CLUSTER_DERIVED
    from components.train_placement.core import time_window
    from hydatis.features import feature_names, node_features, node_labels
    from hydatis.models.anomaly_detector import AnomalyDetector
    from hydatis.models.load_predictor import LoadPredictor
    from simulator.agent import train_agent
    from simulator.datasets import default_dataset
    from simulator.engine import SimConfig, simulate
    from simulator.history import history_dataset
    from simulator.schedulers import make_scheduler
    from simulator.workload import compile_workload

    given = {k: v for k, v in (knobs or {}).items() if v is not None}
    knobs = {"load_factor": 1.0, "usage_scale": 1.0, "synthetic": False, **given}
    q = QUICK
    out = Path(out_dir) / _quick_key(seed, knobs)
    paths = {kind: out / kind for kind in kinds}
    stamp = out / "quick.json"
    if stamp.is_file() and all((p / "done").is_file() for p in paths.values()):
        return paths
    say = progress or (lambda line: None)
    train_seed = seed + int(q["seed_offset"])
    ds, what = default_dataset(
        nodes=int(q["nodes"]),
        horizon_s=float(q["horizon_s"]),
        seed=train_seed,
        load_factor=float(knobs.get("load_factor", 1.0)),
        usage_scale=float(knobs.get("usage_scale", 1.0)),
        synthetic=bool(knobs.get("synthetic", False)),
        **{k: str(knobs[k]) for k in TRACE_FILE_KNOBS if knobs.get(k)},
    )
    out.mkdir(parents=True, exist_ok=True)
    say(f"quick models: training replay of {what}, seed {train_seed}")
    if "load" in kinds or "anomaly" in kinds:
        workload = compile_workload(ds)
        result = simulate(workload, make_scheduler("default"), seed=train_seed)
        hist = history_dataset(workload, result)
        step = float(q["feature_step_s"])
        feats = node_features(hist, step_s=step)
        names = feature_names()
        if "load" in kinds:
            say("quick models: load predictor")
            labels = node_labels(hist, horizon_s=float(q["load_horizon_s"]), step_s=step)
            model = LoadPredictor(
                horizon_s=float(q["load_horizon_s"]),
                n_estimators=int(q["load_rounds"]),
                max_depth=int(q["load_depth"]),
                early_stopping_rounds=None,
                random_state=seed,
            ).fit(feats, labels)
            model.save(paths["load"])
            (paths["load"] / "done").touch()
        if "anomaly" in kinds:
            say("quick models: anomaly detector")
            warm = feats["event_timestamp"].min() + pd.Timedelta(hours=1)
            rows = feats[feats["event_timestamp"] >= warm]
            rows = rows.sort_values(["event_timestamp", "node_id"], kind="stable")
            detector = AnomalyDetector(
                n_forests=int(q["anomaly_forests"]),
                n_estimators=int(q["anomaly_trees"]),
                derived=CLUSTER_DERIVED,
                random_state=seed,
            ).fit(rows[names].to_numpy(np.float64), names)
            detector.save(paths["anomaly"])
            (paths["anomaly"] / "done").touch()
    if "placement" in kinds:
        say("quick models: placement agent")
        torch.set_num_threads(1)
        span = float(q["agent_window_s"])
        starts = np.linspace(0.0, float(q["horizon_s"]) - span, int(q["agent_windows"]))
        slices = [compile_workload(time_window(ds, lo, lo + span)) for lo in starts]
        agent, _ = train_agent(
            slices,
            episodes=int(q["agent_episodes"]),
            agent_params={
                "random_state": seed,
                "epsilon_decay_episodes": int(q["agent_epsilon_decay_episodes"]),
            },
            config=SimConfig(warmup_s=0.0),
            seed=train_seed,
        )
        agent.save(paths["placement"], optimizer=False)
        (paths["placement"] / "done").touch()
    stamp.write_text(json.dumps({"seed": seed, "knobs": knobs, "quick": q, "data": what}))
    return paths


# --------------------------------------------------------------------------- processes


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(_ROOT) if not path else os.pathsep.join([str(_ROOT), path])
    return env


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        log.warning("extender pid %d ignored SIGTERM; killing it", proc.pid)
        proc.kill()
        proc.wait(timeout=_STOP_GRACE_S)


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _wait_healthy(url: str, proc: subprocess.Popen, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise MLStackError(
                    f"the extender exited with code {proc.returncode} before {url}/healthz "
                    f"answered\n--- {log_path} ---\n{_tail(log_path)}"
                )
            try:
                resp = client.get(f"{url}/healthz")
                if resp.status_code == 200:
                    return
                last = f"HTTP {resp.status_code}"
            except httpx.TransportError as exc:
                last = type(exc).__name__
            time.sleep(0.1)
    raise MLStackError(
        f"the extender was not healthy at {url}/healthz in {timeout_s:.0f} s ({last})\n"
        f"--- {log_path} ---\n{_tail(log_path)}"
    )


@contextmanager
def start_shim(
    model_urls: Mapping[str, str],
    *,
    log_dir: Path,
    settings: Mapping[str, Any] | None = None,
    timeout_s: float = SHIM_READY_TIMEOUT_S,
) -> Iterator[str]:
    """Run ``python -m scheduler_shim --config FILE`` (source ``push``) against the model
    servers until the block ends; yields its base URL once ``/healthz`` answers."""
    import yaml

    from serving.launch import free_port

    port = free_port()
    config = {
        **SHIM_SETTINGS,
        "host": "127.0.0.1",
        "port": port,
        "load_url": model_urls.get("load", ""),
        "anomaly_url": model_urls.get("anomaly", ""),
        "agent_url": model_urls.get("placement", ""),
        **(settings or {}),
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    config_path = log_dir / "shim.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    log_path = log_dir / "scheduler-shim.log"
    argv = [sys.executable, "-m", "scheduler_shim", "--config", str(config_path)]
    with log_path.open("wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=_child_env())
    url = f"http://127.0.0.1:{port}"
    try:
        log.info("started the extender (pid %d) on %s", proc.pid, url)
        _wait_healthy(url, proc, log_path, timeout_s)
        yield url
    finally:
        _stop(proc)


@contextmanager
def ml_stack(
    *,
    seed: int = 0,
    models: Mapping[str, str | Path] | None = None,
    use_registry: bool = True,
    alias: str = "champion",
    knobs: Mapping[str, Any] | None = None,
    shim_settings: Mapping[str, Any] | None = None,
    variants: tuple[str, ...] = (),
    out_dir: str | Path | None = None,
    timeout_s: float = 180.0,
    progress: Progress | None = None,
) -> Iterator[MLStack]:
    """Start the model servers and the extender; yield the stack; stop them all.

    Args:
        seed: the evaluated run's seed (quick models train on ``seed + 1000``).
        models: kind -> a model directory or ``models:/`` URI, used as given.
        use_registry: take the registry's ``alias`` version of a kind not in ``models``.
        alias: the registry alias (``champion``).
        knobs: the evaluated trace's ``load_factor``, ``usage_scale``, ``synthetic``
            (for the quick models' training replay).
        shim_settings: extender settings over :data:`SHIM_SETTINGS` (e.g. ``weights``).
        variants: names of :data:`ML_VARIANTS` to serve beside ``ml``, one extender each
            (sharing the model servers).
        out_dir: where logs and quick models go (default ``<work dir>/ml-stack``).
        timeout_s: how long the model servers may take to become ready.
        progress: called with a line per step.

    Yields:
        The running :class:`MLStack`; ``stack.url`` is the extender's URL.

    Raises:
        MLStackError: the extender did not start.
        serving.errors.ServerStartError: a model server did not start.
    """
    from serving.launch import serve_models

    say = progress or (lambda line: None)
    base = (Path(out_dir) if out_dir is not None else work_dir() / "ml-stack").resolve()
    sources: dict[str, str] = {k: str(v) for k, v in (models or {}).items()}
    origin = dict.fromkeys(sources, "given")
    if use_registry:
        for kind, uri in champion_sources(alias).items():
            if kind not in sources:
                sources[kind], origin[kind] = uri, "registry"
    missing = tuple(kind for kind in KINDS if kind not in sources)
    if missing:
        say(f"training quick models for {', '.join(missing)} (no {alias} in the registry)")
        trained = quick_models(base / "models", seed=seed, knobs=knobs, kinds=missing, progress=say)
        for kind, path in trained.items():
            sources[kind], origin[kind] = str(path), "quick"
    logs = base / "logs"
    with ExitStack() as stack:
        say("starting the model servers")
        servers = stack.enter_context(serve_models(sources, log_dir=logs, timeout_s=timeout_s))
        say("starting the extender")
        url = stack.enter_context(start_shim(servers.urls, log_dir=logs, settings=shim_settings))
        urls = {"ml": url}
        for name in dict.fromkeys(variants):
            if name == "ml":
                continue
            if name not in ML_VARIANTS:
                known = ", ".join(ML_VARIANTS)
                raise MLStackError(f"unknown ML scheduler variant {name!r}; known: {known}")
            say(f"starting the extender for {name}")
            urls[name] = stack.enter_context(
                start_shim(
                    servers.urls,
                    log_dir=logs / name,
                    settings={**(shim_settings or {}), **ML_VARIANTS[name]},
                )
            )
        yield MLStack(
            url=url,
            variant_urls=urls,
            model_urls=dict(servers.urls),
            sources=sources,
            origin=origin,
            log_dir=logs,
        )
