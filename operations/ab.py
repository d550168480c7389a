"""Model A/B tests: start a challenger beside the champion, measure, decide, stop.

``start`` writes the challenger's model-server URLs and its share of pods into the
extender's settings — a local settings file, or on a cluster the extender's ConfigMap
and Deployment through the ``kubernetes`` client (the same objects and requests
remediation's :class:`~monitoring.remediation.actions.ExtenderSettings` uses, read with
it) — and records the test (its salt, share, start time and statistics settings) in a
state file. ``status`` attributes placements to arms by the UID hash the extender uses
(:func:`scheduler_shim.ab.assign_arm`), scores each by the placement objective on its
node afterwards, pairs the arms by time window and applies the always-valid test of
:mod:`operations._ab_stats`. ``stop`` ends the test: with ``promote`` the challenger's
servers become the extender's (only when the test says the challenger is better), with
``keep`` the champion stays.

Observations come from a cluster dataset (``hydatis extract`` / a replay's export):
``node_metrics`` (ts, node, cpu_util) and ``pods`` (start_ts, node, and ``uid`` — the
pod name is taken as its UID when the table has no ``uid`` column).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from hydatis.errors import ConfigError, HydatisError
from operations._ab_stats import (
    DEFAULT_CONFIDENCE,
    DEFAULT_HORIZON_S,
    DEFAULT_MIN_PER_ARM,
    DEFAULT_MIN_WINDOWS,
    DEFAULT_WINDOW_S,
    Verdict,
    decide,
    matched_windows,
    placement_outcomes,
)
from scheduler_shim.ab import CHALLENGER, DEFAULT_SALT, ab_bucket

__all__ = [
    "ABError",
    "ABReport",
    "ABTest",
    "Observations",
    "SettingsTarget",
    "analyse",
    "observations_from_dataset",
    "start_test",
    "status",
    "stop_test",
]

#: Extender settings an A/B test writes, and the Deployment variables that override them.
AB_KEYS = ("ab_percent", "ab_salt", "challenger_agent_url", "challenger_load_url",
           "challenger_anomaly_url")  # fmt: skip
_CHAMPION_KEYS = {"agent": "agent_url", "load": "load_url", "anomaly": "anomaly_url"}
_ANNOTATION = "hydatis.io/ab-changed-at"


class ABError(HydatisError):
    """An A/B command cannot do what was asked (no test running, bad settings, ...)."""


@dataclass(frozen=True)
class ABTest:
    """One A/B test's parameters (the state file holds them).

    Attributes:
        challenger: model kind (agent, load, anomaly) -> the challenger's server URL.
        percent: share of the models' pods in the challenger's arm.
        salt: the arm hash's salt (a fresh one per test).
        started_at: unix seconds; placements before it are not counted.
        confidence, window_s, horizon_s, min_per_arm, min_windows, max_windows: the
            statistics' settings (:mod:`operations._ab_stats`).
    """

    challenger: dict[str, str]
    percent: float = 50.0
    salt: str = DEFAULT_SALT
    started_at: float = 0.0
    confidence: float = DEFAULT_CONFIDENCE
    window_s: float = DEFAULT_WINDOW_S
    horizon_s: float = DEFAULT_HORIZON_S
    min_per_arm: int = DEFAULT_MIN_PER_ARM
    min_windows: int = DEFAULT_MIN_WINDOWS
    max_windows: int | None = None

    def __post_init__(self) -> None:
        bad = sorted(set(self.challenger) - set(_CHAMPION_KEYS))
        if bad:
            raise ConfigError(f"challenger: unknown model kind(s) {bad}; use agent, load, anomaly")
        if not any(self.challenger.values()):
            raise ConfigError("challenger: give at least one model server URL")
        if not 0.0 < self.percent < 100.0:
            raise ConfigError(f"percent must be in (0, 100), got {self.percent}")
        if not 0.0 < self.confidence < 1.0:
            raise ConfigError(f"confidence must be in (0, 1), got {self.confidence}")

    def settings(self) -> dict[str, Any]:
        """The extender settings that run this test."""
        out: dict[str, Any] = {"ab_percent": float(self.percent), "ab_salt": self.salt}
        for kind in _CHAMPION_KEYS:
            out[f"challenger_{kind}_url"] = self.challenger.get(kind, "")
        return out


# ------------------------------------------------------------------ where the settings live
class SettingsTarget:
    """The extender's settings: a local YAML file, or its ConfigMap + Deployment.

    Args:
        settings: remediation's ``ExtenderSettings`` (built by :meth:`file` or
            :meth:`cluster`): it reads the settings and the Deployment.
        clock: unix seconds (the Deployment's roll annotation).
    """

    def __init__(self, settings: Any, clock: Callable[[], float] = time.time) -> None:
        self._s, self.clock = settings, clock

    @classmethod
    def file(cls, path: str | Path) -> SettingsTarget:
        """The extender's local settings file."""
        from monitoring.remediation.actions import ExtenderSettings
        from monitoring.remediation.config import RemediationConfig

        cfg = RemediationConfig(extender_target="file", extender_config_file=Path(path))
        return cls(ExtenderSettings(None, cfg))

    @classmethod
    def cluster(cls, cluster: Any, **names: str) -> SettingsTarget:
        """The extender's ConfigMap and Deployment (``names``: ``extender_namespace``,
        ``extender_configmap``, ``extender_config_key``, ``extender_deployment``)."""
        from monitoring.remediation.actions import ExtenderSettings
        from monitoring.remediation.config import RemediationConfig

        cfg = RemediationConfig(extender_target="configmap", **names)
        return cls(ExtenderSettings(cluster, cfg))

    @property
    def where(self) -> str:
        """For messages: ``file PATH`` or ``configmap NS/NAME``."""
        return self._s.target

    def read(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """(the settings, the Deployment or None).

        Raises:
            ABError: the settings cannot be read (the reason names the object).
        """
        from monitoring.remediation.actions import _RefusedError

        try:
            return self._s._read()
        except _RefusedError as exc:
            raise ABError(f"{self.where}: {exc}") from exc

    def write(self, changes: dict[str, Any]) -> str:
        """Apply ``changes`` to the settings (and roll the Deployment); what was done."""
        settings, deployment = self.read()
        text = yaml.safe_dump({**settings, **changes}, sort_keys=False)
        cfg = self._s.config
        if cfg.extender_target == "file":
            _atomic_write(Path(cfg.extender_config_file), text)
            return f"wrote {cfg.extender_config_file}: restart the extender to apply"
        cluster = self._s.cluster
        cluster.patch_configmap(
            cfg.extender_namespace, cfg.extender_configmap, {cfg.extender_config_key: text}
        )
        if deployment is None:
            return f"patched {self.where}; no Deployment found to roll"
        cluster.patch_deployment(
            cfg.extender_namespace, cfg.extender_deployment, self._roll(deployment, changes)
        )
        return f"patched {self.where}; deployment {cfg.extender_deployment} rolled"

    def _roll(self, deployment: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        """A strategic merge patch: the pod template's annotation (so pods restart and read
        the ConfigMap), and the ``HYDATIS_SHIM_<KEY>`` variables the containers set for
        changed keys (they would override the ConfigMap)."""
        stamp = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        template: dict[str, Any] = {"metadata": {"annotations": {_ANNOTATION: stamp}}}
        spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        containers = []
        for ctr in spec.get("containers") or []:
            names = {e.get("name") for e in ctr.get("env") or []}
            env = [
                {"name": f"HYDATIS_SHIM_{k.upper()}", "value": _env_value(v)}
                for k, v in changes.items()
                if f"HYDATIS_SHIM_{k.upper()}" in names
            ]
            if env:
                containers.append({"name": ctr["name"], "env": env})
        if containers:
            template["spec"] = {"containers": containers}
        return {"spec": {"template": template}}


def _env_value(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# ------------------------------------------------------------------ observations
@dataclass(frozen=True)
class Observations:
    """What the analysis reads: node CPU over time and the placements.

    Attributes:
        times: sample times (unix seconds, increasing), shape (T,).
        node_cpu: CPU utilisation, shape (T, N).
        placed_at, node_index, uids: each placement's time, node column and pod UID.
    """

    times: np.ndarray
    node_cpu: np.ndarray
    placed_at: np.ndarray
    node_index: np.ndarray
    uids: list[str]


def observations_from_dataset(path: str | Path) -> Observations:
    """Observations from a cluster dataset directory (``node_metrics``, ``pods``).

    Raises:
        ConfigError: the directory or a table or column is missing.
    """
    root = Path(path)
    tables = {}
    for name in ("node_metrics", "pods"):
        f = root / f"{name}.parquet"
        if not f.is_file():
            raise ConfigError(f"{root}: no {name}.parquet (a cluster dataset directory?)")
        tables[name] = pd.read_parquet(f)
    nm, pods = tables["node_metrics"], tables["pods"]
    for table, cols in (
        ("node_metrics", ("ts", "node", "cpu_util")),
        ("pods", ("start_ts", "node")),
    ):
        df = tables[table]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ConfigError(f"{root}/{table}.parquet: missing column(s) {missing}")
    wide = nm.pivot_table(index="ts", columns="node", values="cpu_util", aggfunc="mean")
    wide = wide.sort_index()
    nodes = {name: i for i, name in enumerate(wide.columns)}
    times = _unix(wide.index)
    pods = pods[pods["node"].isin(nodes) & pods["start_ts"].notna()]
    uid_col = "uid" if "uid" in pods.columns else "pod"
    return Observations(
        times=times,
        node_cpu=wide.to_numpy(np.float64),
        placed_at=_unix(pd.Index(pods["start_ts"])),
        node_index=pods["node"].map(nodes).to_numpy(np.int64),
        uids=pods[uid_col].astype(str).tolist(),
    )


def _unix(index: pd.Index) -> np.ndarray:
    if isinstance(index, pd.DatetimeIndex) or pd.api.types.is_datetime64_any_dtype(index):
        ts = pd.to_datetime(index, utc=True)
        return (ts.asi8 / 1e9).astype(np.float64)
    return np.asarray(index, dtype=np.float64)


# ------------------------------------------------------------------ analysis
@dataclass(frozen=True)
class ABReport:
    """Per-arm figures and the decision.

    Attributes:
        pods: arm -> placements counted (after the start, with a scored outcome).
        objective: arm -> mean placement outcome over all its placements.
        verdict: the test's decision over matched windows.
    """

    pods: dict[str, int]
    objective: dict[str, float]
    verdict: Verdict
    windows: dict[str, list[float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "pods": self.pods,
            "objective": {k: (v if math.isfinite(v) else None) for k, v in self.objective.items()},
            "verdict": self.verdict.as_dict(),
        }


def analyse(obs: Observations, test: ABTest) -> ABReport:
    """Split the placements by arm, score them, pair by window, decide."""
    after = obs.placed_at >= test.started_at
    placed = obs.placed_at[after]
    nodes = obs.node_index[after]
    uids = [u for u, keep in zip(obs.uids, after.tolist(), strict=True) if keep]
    chal = np.array([ab_bucket(u, test.salt) < test.percent for u in uids], dtype=bool)
    outcome = placement_outcomes(obs.times, obs.node_cpu, placed, nodes, horizon_s=test.horizon_s)
    scored = np.isfinite(outcome)
    pods, objective = {}, {}
    for arm, mask in (("champion", ~chal), (CHALLENGER, chal)):
        sel = mask & scored
        pods[arm] = int(sel.sum())
        objective[arm] = float(outcome[sel].mean()) if sel.any() else math.nan
    w = matched_windows(
        placed,
        outcome,
        chal,
        window_s=test.window_s,
        min_per_arm=test.min_per_arm,
        start=test.started_at if test.started_at > 0 else None,
    )
    verdict = decide(
        w["champion"],
        w["challenger"],
        confidence=test.confidence,
        min_windows=test.min_windows,
        max_windows=test.max_windows,
    )
    windows = {k: np.asarray(v, dtype=float).tolist() for k, v in w.items()}
    return ABReport(pods, objective, verdict, windows)


# ------------------------------------------------------------------ the commands
def _save_state(path: Path, test: ABTest, where: str) -> None:
    _atomic_write(path, json.dumps({"test": asdict(test), "settings": where}, indent=2))


def load_state(path: str | Path) -> ABTest:
    """The running test recorded in ``path``.

    Raises:
        ABError: no test is recorded there, or the file is not one of ours.
    """
    p = Path(path)
    if not p.is_file():
        raise ABError(f"no A/B test running: no state file at {p}")
    try:
        return ABTest(**json.loads(p.read_text())["test"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ABError(f"{p}: not an A/B test state file ({exc})") from exc


def start_test(target: SettingsTarget, test: ABTest, state_path: str | Path) -> dict[str, Any]:
    """Write the challenger into the extender's settings and record the test.

    Raises:
        ABError: a test is already running (its state file exists), or the settings
            cannot be read.
    """
    state = Path(state_path)
    if state.exists():
        raise ABError(f"an A/B test is already running ({state}); stop it first")
    if test.started_at <= 0:
        test = ABTest(**{**asdict(test), "started_at": time.time()})
    done = target.write(test.settings())
    _save_state(state, test, target.where)
    return {"started": asdict(test), "applied": done}


def status(obs: Observations, state_path: str | Path) -> ABReport:
    """The running test's per-arm figures and decision."""
    return analyse(obs, load_state(state_path))


def stop_test(
    target: SettingsTarget,
    state_path: str | Path,
    *,
    decision: str,
    report: ABReport | None = None,
) -> dict[str, Any]:
    """End the test: ``promote`` (the challenger's servers become the extender's; only
    when ``report``'s verdict is ``promote``) or ``keep`` (the champion stays).

    Raises:
        ABError: no test runs, an unknown decision, or ``promote`` without a promoting
            verdict.
    """
    test = load_state(state_path)
    if decision not in ("promote", "keep"):
        raise ABError(f"decision must be promote or keep, got {decision!r}")
    changes: dict[str, Any] = {"ab_percent": 0.0}
    changes |= {f"challenger_{k}_url": "" for k in _CHAMPION_KEYS}
    if decision == "promote":
        if report is None or report.verdict.decision != "promote":
            why = "no analysis given" if report is None else report.verdict.reason
            raise ABError(
                f"refusing to promote: the test does not show the challenger better ({why})"
            )
        for kind, url in test.challenger.items():
            if url:
                changes[_CHAMPION_KEYS[kind]] = url
    done = target.write(changes)
    Path(state_path).unlink()
    return {"decision": decision, "applied": done, "settings": changes}
