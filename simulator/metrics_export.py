"""A simulator comparison written out as metrics, for Prometheus, its rules and Grafana.

Why: the alert rules and dashboards read what a real cluster exposes. Writing a replay
under those names and backfilling it into a real Prometheus (``promtool tsdb
create-blocks-from openmetrics``) exercises every rule and panel on a replay of a real
trace. ``hydatis simulate ... --metrics-out FILE`` uses :class:`ReplayRecorder`:

1. :meth:`ReplayRecorder.wrap` wraps each scheduler before its run, to record every
   decision's simulated time, latency and outcome, and, for a run that has scrape targets
   (the ML scheduler's extender and model servers), to scrape their real ``/metrics``
   every ``scrape_interval_s`` of *simulated* time, as Prometheus would have;
2. :meth:`ReplayRecorder.add` takes each finished run;
3. :meth:`ReplayRecorder.write` writes one OpenMetrics file.

What the file holds (all times shifted together by ``end_before``):

- **the subject run** (the ML scheduler's when it ran, else the first) under the raw names
  a cluster gives, with no extra label, exactly as :mod:`simulator.openmetrics` writes
  them (node_exporter, kube-state-metrics, cAdvisor), plus the kube-state-metrics and
  kube-scheduler families a cluster also has:

  - ``kube_pod_status_phase{namespace,pod,phase="Pending"}`` = 1 while a pod waits (a pod
    evicted and re-queued is a new pod, ``-e1``, ``-e2``, ... as in
    :func:`simulator.history.history_dataset`); only the Pending phase is written (running
    pods are ``kube_pod_info``);
  - ``kube_pod_status_reason{namespace,pod,reason="Evicted"}`` = 1 for
    ``evicted_pod_ttl_s`` after a pod's memory eviction (the failed pod object a cluster
    keeps around a while);
  - ``kube_node_status_allocatable{node,resource,unit}`` (= capacity in the simulator),
    ``kube_node_spec_unschedulable{node}`` = 0 and
    ``kube_node_status_condition{node,condition="Ready",status="true"}`` = 1;
  - ``scheduler_pending_pods{queue="unschedulable"}`` (every pod still pending at the end
    of a step failed a scheduling cycle), and, from the decision records,
    ``scheduler_schedule_attempts_total{profile,result}`` and the histogram
    ``scheduler_scheduling_attempt_duration_seconds{profile,result}`` (``result`` is
    ``scheduled`` or ``unschedulable``; ``profile`` is ``default-scheduler``,
    ``ml-scheduler`` or the baseline's name);

- **every run**, with a ``scheduler`` label (a replay runs several schedulers on the same
  cluster; a real cluster has one, so these are the project's own ``hydatis_sim_``
  names):

  - ``hydatis_sim_node_cpu_utilization_ratio`` histogram: every node at every step (so
    ``increase(..._bucket[range])`` gives the node-time distribution: mean, p95, share above
    0.85);
  - ``hydatis_sim_nodes``, ``hydatis_sim_hot_nodes`` (CPU > 0.85),
    ``hydatis_sim_cpu_overloaded_nodes`` (demand > capacity) gauges;
  - ``hydatis_sim_pods{state="alive"|"pending"}`` and
    ``hydatis_sim_pods_impacted{cause="pending"|"cpu_overload"|"oom"}`` gauges
    (availability over a range = 1 − Σ impacted / Σ alive);
  - ``hydatis_sim_placements_total``, ``hydatis_sim_evictions_total`` counters;
  - ``hydatis_sim_decision_seconds`` histogram (when the run was wrapped);

- **the scraped services** of a run with targets: every family their ``/metrics`` had
  (``python_``/``process_`` families and ``_created`` samples dropped: they describe the
  process, not the replay), with ``job`` and ``instance`` labels as Prometheus adds them,
  and ``up{job,instance}`` (1, or 0 for a failed scrape). Their values are the services'
  own; only the timestamps are simulated time. Latencies are wall-clock seconds (real
  work), while ages such as ``hydatis_extender_node_state_age_seconds`` are wall-clock
  too and so much smaller than in a live cluster.

A value at time ``t`` stands for the step that ends at ``t``, as in
:mod:`simulator.openmetrics`.
"""

from __future__ import annotations

import logging
import math
import time
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import numpy as np
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from hydatis.errors import ConfigError
from simulator.engine import SimResult
from simulator.history import history_dataset
from simulator.metrics import HOT_THRESHOLD
from simulator.openmetrics import _labels, _write_nodes, _write_pods, _Writer
from simulator.types import ClusterView, PodSpec, Scheduler
from simulator.workload import Workload

__all__ = [
    "CPU_BUCKETS",
    "DECISION_BUCKETS",
    "EXTENDER_JOB",
    "MODEL_SERVER_JOB",
    "PROFILES",
    "RecordingScheduler",
    "ReplayMetricsExport",
    "ReplayRecorder",
    "ScrapeTarget",
    "ml_stack_targets",
    "pending_intervals",
]

log = logging.getLogger(__name__)

#: kube-scheduler profile names of the simulator's schedulers (others keep their name).
PROFILES = {"default": "default-scheduler", "ml": "ml-scheduler"}
#: Prometheus jobs of the extender and of the model servers, as the rules
#: (``monitoring.alerts.spec``) and a cluster's scrape configuration name them.
EXTENDER_JOB = "hydatis-shim"
MODEL_SERVER_JOB = "hydatis-model-servers"
#: Node CPU histogram bounds: the target band (0.65 ± 0.05) and the hot line (0.85) are
#: bucket edges, so shares of node-time in them are exact.
CPU_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
#: kube-scheduler's attempt-duration buckets (ExponentialBuckets(0.001, 2, 15)).
DECISION_BUCKETS = tuple(0.001 * 2**i for i in range(15))
DEFAULT_SCRAPE_INTERVAL_S = 30.0
DEFAULT_EVICTED_TTL_S = 3600.0
_DROPPED_PREFIXES = ("python_", "process_")
_EPS = 1e-6


@dataclass(frozen=True)
class ScrapeTarget:
    """A ``/metrics`` endpoint scraped during a run.

    Attributes:
        job: the Prometheus ``job`` label (e.g. :data:`EXTENDER_JOB`).
        url: the base URL; ``/metrics`` is appended.
    """

    job: str
    url: str

    @property
    def instance(self) -> str:
        """``host:port``, the ``instance`` label Prometheus gives a target."""
        return httpx.URL(self.url).netloc.decode()


def ml_stack_targets(extender_url: str, model_urls: Mapping[str, str]) -> list[ScrapeTarget]:
    """The scrape targets of a running ML stack (:func:`cli.ml_stack.ml_stack`): the
    extender and each model server (KServe serves ``/metrics`` on its REST port)."""
    targets = [ScrapeTarget(EXTENDER_JOB, extender_url)]
    targets += [ScrapeTarget(MODEL_SERVER_JOB, url) for _, url in sorted(model_urls.items())]
    return targets


# --------------------------------------------------------------------------- scraping


class _Family:
    """One scraped family: its type, help, and samples per series."""

    __slots__ = ("help", "kind", "series")

    def __init__(self, kind: str, help_: str) -> None:
        self.kind, self.help = kind, help_
        #: (sample name, sorted label pairs) -> (times, values)
        self.series: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[array, array]] = {}


class _ScrapeLog:
    """Samples scraped from the targets, stamped with simulated time."""

    def __init__(self, targets: Sequence[ScrapeTarget], timeout_s: float) -> None:
        self.targets = list(targets)
        self.timeout_s = timeout_s
        self.families: dict[str, _Family] = {}
        self.scrapes = 0
        self.failures = 0
        self._client: httpx.Client | None = None

    def _add(self, family: str, kind: str, help_: str, name: str, labels: dict, t, v) -> None:
        fam = self.families.get(family)
        if fam is None:
            fam = self.families[family] = _Family(kind, help_)
        key = (name, tuple(sorted(labels.items())))
        slot = fam.series.get(key)
        if slot is None:
            slot = fam.series[key] = (array("d"), array("d"))
        slot[0].append(t)
        slot[1].append(v)

    def scrape(self, t: float) -> None:
        """Scrape every target once; its samples count as taken at simulated ``t``."""
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout_s)
        for target in self.targets:
            base = {"job": target.job, "instance": target.instance}
            up = 1.0
            try:
                resp = self._client.get(f"{target.url.rstrip('/')}/metrics")
                resp.raise_for_status()
                families = list(text_string_to_metric_families(resp.text))
            except (httpx.HTTPError, ValueError) as exc:
                up = 0.0
                self.failures += 1
                if self.failures <= 3:
                    log.warning("scrape of %s (%s) failed: %s", target.job, target.url, exc)
                families = []
            self._add("up", "gauge", "1 if the target was scraped.", "up", base, t, up)
            for fam in families:
                if fam.name.startswith(_DROPPED_PREFIXES) or fam.name == "up":
                    continue
                kind = fam.type if fam.type in ("counter", "gauge", "histogram") else "unknown"
                name_fam = fam.name
                if fam.type == "info":  # an info family becomes a gauge named as its sample
                    kind, name_fam = "gauge", f"{fam.name}_info"
                for s in fam.samples:
                    if s.name.endswith("_created") or s.name.endswith("_gsum"):
                        continue
                    if not math.isfinite(s.value):
                        continue
                    labels = {**s.labels, **base}
                    self._add(name_fam, kind, fam.documentation, s.name, labels, t, s.value)
        self.scrapes += 1

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


# --------------------------------------------------------------------------- wrapper


class RecordingScheduler(Scheduler):
    """A scheduler that records each decision (simulated time, seconds, placed or not)
    and scrapes its run's targets, then defers to the scheduler it wraps.

    The engine sees the wrapped scheduler's name, hooks and stats unchanged.
    """

    def __init__(
        self,
        inner: Scheduler,
        *,
        targets: Sequence[ScrapeTarget] = (),
        scrape_interval_s: float = DEFAULT_SCRAPE_INTERVAL_S,
        scrape_timeout_s: float = 5.0,
    ) -> None:
        if not scrape_interval_s > 0:
            raise ConfigError(f"scrape_interval_s must be > 0, got {scrape_interval_s}")
        self.inner = inner
        self.name = getattr(inner, "name", type(inner).__name__)
        self.scrape_interval_s = scrape_interval_s
        self.scrape_timeout_s = scrape_timeout_s
        self.targets = list(targets)
        self._clear()

    def _clear(self) -> None:
        self.decision_t: array = array("d")
        self.decision_s: array = array("d")
        self.decision_ok: array = array("b")
        self.scrape_log = _ScrapeLog(self.targets, self.scrape_timeout_s) if self.targets else None
        self._last_scrape = -math.inf

    def __getattr__(self, item: str) -> Any:  # stats(), counts, url, ...
        return getattr(self.__dict__["inner"], item)

    def reset(self, seed: int) -> None:
        """Reset the wrapped scheduler and forget the previous run's records."""
        self.inner.reset(seed)
        self._clear()

    def on_step(self, view: ClusterView) -> None:
        """The wrapped scheduler's step hook, then a scrape when one is due."""
        hook = getattr(self.inner, "on_step", None)
        if hook is not None:
            hook(view)
        if self.scrape_log is not None and view.now - self._last_scrape >= self.scrape_interval_s:
            self._last_scrape = view.now
            self.scrape_log.scrape(float(view.now))

    def select(self, pod: PodSpec, view: ClusterView) -> int | None:
        """The wrapped scheduler's choice, timed."""
        t0 = time.perf_counter()
        node = self.inner.select(pod, view)
        self.decision_s.append(time.perf_counter() - t0)
        self.decision_t.append(float(view.now))
        self.decision_ok.append(node is not None)
        return node

    def close(self) -> None:
        """Close the wrapped scheduler and the scrape client."""
        self.inner.close()
        if self.scrape_log is not None:
            self.scrape_log.close()


# --------------------------------------------------------------------------- runs


@dataclass
class _Run:
    """What one run contributes: the per-step series every run writes."""

    name: str
    epoch_s: float
    times: np.ndarray
    cpu_hist: np.ndarray  # steps x (buckets + 1) cumulative per step (not over time)
    cpu_sum: np.ndarray
    nodes: int
    hot: np.ndarray
    overloaded: np.ndarray
    alive: np.ndarray
    pending: np.ndarray
    impacted: dict[str, np.ndarray]
    placements: np.ndarray  # per step
    evictions: np.ndarray  # per step
    decisions: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    scrape: _ScrapeLog | None


def _step_index(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The step each event time belongs to (events happen at step times)."""
    return np.clip(np.searchsorted(times, at - _EPS, side="left"), 0, max(times.size - 1, 0))


def _evicted_mask(workload: Workload, seg: np.ndarray) -> np.ndarray:
    """Which stays (rows of ``seg``, sorted by pod then start) ended by an eviction: a
    stay followed by another of the same pod, or a last stay that ended before the pod's
    run time was used up."""
    if seg.size == 0:
        return np.zeros(0, dtype=bool)
    pod = seg[:, 0].astype(np.int64)
    last = np.r_[pod[1:] != pod[:-1], True]
    ran = seg[:, 3] - seg[:, 2]
    first = np.r_[True, pod[1:] != pod[:-1]]
    group = np.maximum.accumulate(np.where(first, np.arange(pod.size), 0))
    cum = np.cumsum(np.where(np.isfinite(ran), ran, 0.0))
    before = np.where(group > 0, cum[group - 1], 0.0)
    used = cum - before
    short = np.isfinite(seg[:, 3]) & (used < workload.duration[pod] - _EPS)
    return (~last) | (last & short)


def _sorted_segments(result: SimResult) -> np.ndarray:
    seg = np.asarray(result.segments, dtype="float64").reshape(-1, 4)
    return seg[np.lexsort((seg[:, 2], seg[:, 0]))] if seg.size else seg


def _run_series(
    name: str, workload: Workload, result: SimResult, wrapper: RecordingScheduler | None
) -> _Run:
    times = np.asarray(result.times, dtype="float64")
    cpu = np.asarray(result.node_cpu, dtype="float64")
    edges = np.asarray(CPU_BUCKETS)
    hist = (cpu[:, :, None] <= edges[None, None, :] + 1e-12).sum(axis=1)
    hist = np.concatenate([hist, np.full((times.size, 1), cpu.shape[1])], axis=1)
    seg = _sorted_segments(result)
    placements = np.bincount(_step_index(times, seg[:, 2]), minlength=times.size)
    ev = _evicted_mask(workload, seg)
    evictions = np.bincount(_step_index(times, seg[ev, 3]), minlength=times.size)
    decisions = None
    if wrapper is not None and len(wrapper.decision_t):
        decisions = (
            np.frombuffer(wrapper.decision_t, dtype="float64").copy(),
            np.frombuffer(wrapper.decision_s, dtype="float64").copy(),
            np.frombuffer(wrapper.decision_ok, dtype="int8").astype(bool),
        )
    return _Run(
        name=name,
        epoch_s=pd.Timestamp(workload.t0).value / 1e9,
        times=times,
        cpu_hist=hist,
        cpu_sum=cpu.sum(axis=1),
        nodes=int(cpu.shape[1]),
        hot=(cpu > HOT_THRESHOLD).sum(axis=1),
        overloaded=np.asarray(result.cpu_overloaded_nodes, dtype="float64"),
        alive=np.asarray(result.pods_alive, dtype="float64"),
        pending=np.asarray(result.pending, dtype="float64"),
        impacted={
            "pending": np.asarray(result.impacted_pending, dtype="float64"),
            "cpu_overload": np.asarray(result.impacted_cpu, dtype="float64"),
            "oom": np.asarray(result.impacted_oom, dtype="float64"),
        },
        placements=placements[: times.size],
        evictions=evictions[: times.size],
        decisions=decisions,
        scrape=wrapper.scrape_log if wrapper is not None else None,
    )


# --------------------------------------------------------------------------- export


@dataclass(frozen=True)
class ReplayMetricsExport:
    """What :meth:`ReplayRecorder.write` wrote.

    Attributes:
        path: the file.
        subject: the run written under the raw cluster names.
        schedulers: every run written with a ``scheduler`` label.
        series: number of series.
        samples: number of samples.
        shift_s: seconds added to every time (a whole number of steps).
        first: first sample time (unix seconds, after the shift).
        last: last sample time (unix seconds, after the shift).
        step_s: the step of the series.
        families: the metric family names written, in order.
        scraped_jobs: the jobs scraped during the subject's or other runs.
    """

    path: Path
    subject: str
    schedulers: tuple[str, ...]
    series: int
    samples: int
    shift_s: float
    first: float
    last: float
    step_s: float
    families: tuple[str, ...]
    scraped_jobs: tuple[str, ...] = ()


class _FamilyWriter(_Writer):
    """:class:`simulator.openmetrics._Writer` that also remembers the families."""

    def __init__(self, fh: IO[str], whole_seconds: bool) -> None:
        super().__init__(fh, whole_seconds)
        self.names: list[str] = []

    def family(self, name: str, kind: str, help_: str, unit: str | None = None) -> None:
        self.names.append(name)
        super().family(name, kind, help_, unit)


@dataclass
class ReplayRecorder:
    """Collects a comparison's runs and writes them as one OpenMetrics file.

    Args:
        targets: scheduler name -> the endpoints to scrape during that run (e.g.
            ``{"ml": ml_stack_targets(stack.url, stack.model_urls)}``).
        scrape_interval_s: simulated seconds between scrapes.
        subject: the run written under the raw cluster names (default: ``ml`` when it
            ran, else the first run added).
        evicted_pod_ttl_s: how long an evicted pod's ``Evicted`` status is written.
    """

    targets: Mapping[str, Sequence[ScrapeTarget]] = field(default_factory=dict)
    scrape_interval_s: float = DEFAULT_SCRAPE_INTERVAL_S
    subject: str | None = None
    evicted_pod_ttl_s: float = DEFAULT_EVICTED_TTL_S

    def __post_init__(self) -> None:
        if not self.scrape_interval_s > 0:
            raise ConfigError(f"scrape_interval_s must be > 0, got {self.scrape_interval_s}")
        if self.evicted_pod_ttl_s < 0:
            raise ConfigError(f"evicted_pod_ttl_s must be >= 0, got {self.evicted_pod_ttl_s}")
        self._wrappers: dict[str, RecordingScheduler] = {}
        self._runs: dict[str, _Run] = {}
        self._raw: dict[str, tuple[Workload, SimResult, Mapping[str, str] | None]] = {}

    def wrap(self, name: str, scheduler: Scheduler) -> Scheduler:
        """``scheduler`` wrapped to record its decisions (and scrape ``targets[name]``)."""
        wrapper = RecordingScheduler(
            scheduler,
            targets=self.targets.get(name, ()),
            scrape_interval_s=self.scrape_interval_s,
        )
        self._wrappers[name] = wrapper
        return wrapper

    def add(
        self,
        name: str,
        workload: Workload,
        result: SimResult,
        *,
        owners: Mapping[str, str] | None = None,
    ) -> None:
        """Take a finished run. The subject's whole result is kept for the raw series;
        the others only their per-step series.

        Args:
            name: the scheduler's name in the comparison (the ``scheduler`` label).
            workload: the workload the run replayed.
            result: the run.
            owners: pod name -> workload name (the pods' ``created_by_name``).
        """
        if self._runs and next(iter(self._runs.values())).times.size != result.times.size:
            raise ConfigError(
                f"run '{name}' has {result.times.size} steps, the first run "
                f"{next(iter(self._runs.values())).times.size}: one comparison, one timeline"
            )
        self._runs[name] = _run_series(name, workload, result, self._wrappers.get(name))
        if self._takes_subject(name):
            self._raw = {name: (workload, result, owners)}

    def _takes_subject(self, name: str) -> bool:
        """Whether run ``name`` becomes the subject: the one asked for, else ``ml``, else
        the first run."""
        if self.subject is not None:
            return name == self.subject
        current = next(iter(self._raw), None)
        return current is None or (name == "ml" and current != "ml")

    @property
    def schedulers(self) -> tuple[str, ...]:
        """The runs added so far."""
        return tuple(self._runs)

    def write(
        self,
        path: str | Path,
        *,
        end_before: float | None = 4 * 3600.0,
        now: float | None = None,
        cpus_per_node: int = 1,
        attribute_interval_s: float | None = None,
        namespace: str = "default",
    ) -> ReplayMetricsExport:
        """Write the file.

        Args:
            path: the OpenMetrics file.
            end_before: shift every time so the data ends this many seconds before ``now``
                (a backfilled block must end more than ~3 h in the past); None keeps the
                dataset's own times.
            now: "now" for ``end_before`` (unix seconds; default: the clock).
            cpus_per_node: per-CPU idle series per node (see :mod:`simulator.openmetrics`).
            attribute_interval_s: write static families only this often (see there).
            namespace: the pods' ``namespace`` label.

        Raises:
            ConfigError: no run was added, or a bad argument.
        """
        if not self._runs:
            raise ConfigError("no run to export: add at least one run")
        if cpus_per_node < 1:
            raise ConfigError(f"cpus_per_node must be >= 1, got {cpus_per_node}")
        subject = next(iter(self._raw)) if self._raw else next(iter(self._runs))
        if subject not in self._raw:
            raise ConfigError(f"subject '{self.subject}' was not among the runs added")
        workload, result, owners = self._raw[subject]
        run0 = self._runs[subject]
        step = float(result.step_s)
        grid = run0.epoch_s + run0.times
        shift = 0.0
        if end_before is not None and grid.size:
            target = (now if now is not None else time.time()) - float(end_before)
            shift = float(np.floor((target - grid[-1]) / step) * step)
        every = 1
        if attribute_interval_s is not None:
            every = max(round(attribute_interval_s / step), 1)
        ds = history_dataset(workload, result, owners=owners)
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        whole = bool(np.all(np.mod(grid + shift, 1.0) == 0)) and float(shift).is_integer()
        with out.open("w", encoding="utf-8", newline="\n") as fh:
            w = _FamilyWriter(fh, whole)
            _write_nodes(w, ds, grid, step, shift, cpus_per_node, every)
            _write_pods(w, ds, grid, step, shift, namespace, every)
            _write_cluster_extras(
                w, workload, result, grid, shift, every, namespace, self.evicted_pod_ttl_s
            )
            _write_kube_scheduler(w, run0, grid + shift, subject)
            _write_sim(w, list(self._runs.values()), shift)
            jobs = _write_scraped(w, list(self._runs.values()), shift)
            fh.write("# EOF\n")
        first = w.first if w.samples else float("nan")
        last = w.last if w.samples else float("nan")
        return ReplayMetricsExport(
            out,
            subject,
            tuple(self._runs),
            w.series,
            w.samples,
            shift,
            first,
            last,
            step,
            tuple(w.names),
            tuple(jobs),
        )


# --------------------------------------------------------------------------- families


def pending_intervals(workload: Workload, result: SimResult) -> list[tuple[str, float, float]]:
    """Every pending spell of the run as ``(pod name, start s, end s)``, ``end`` exclusive
    (inf while still pending at the end): from arrival to the first placement under the
    pod's name, and from each eviction to the next placement under ``-e1``, ``-e2``, ...
    (the pod a controller creates in place of the evicted one)."""
    seg = _sorted_segments(result)
    ev = _evicted_mask(workload, seg)
    last_t = float(result.times[-1]) if result.times.size else 0.0
    names = [p.name for p in workload.pods]
    out: list[tuple[str, float, float]] = []
    by_pod: dict[int, list[int]] = {}
    for row, pod in enumerate(seg[:, 0].astype(np.int64).tolist()):
        by_pod.setdefault(pod, []).append(row)
    arrived = np.flatnonzero(workload.arrival <= last_t + _EPS)
    for i in arrived.tolist():
        rows = by_pod.get(i, [])
        start = float(workload.arrival[i])
        for k, row in enumerate(rows):
            name = names[i] if k == 0 else f"{names[i]}-e{k}"
            out.append((name, start, float(seg[row, 2])))
            if not ev[row]:
                start = math.nan
                break
            start = float(seg[row, 3])
        if not math.isnan(start):
            k = len(rows)
            out.append((names[i] if k == 0 else f"{names[i]}-e{k}", start, math.inf))
    return out


def _pod_lives(
    workload: Workload, result: SimResult, spells: list[tuple[str, float, float]]
) -> list[tuple[str, float, float, float]]:
    """Each pod object's life ``(name, created, placed, gone)``: created when its pending
    spell starts, gone when its stay ends (inf while it runs or waits at the end)."""
    seg = _sorted_segments(result)
    names = [p.name for p in workload.pods]
    stay_end: dict[str, float] = {}
    pods = seg[:, 0].astype(np.int64)
    k = 0
    for row in range(seg.shape[0]):
        k = k + 1 if row and pods[row] == pods[row - 1] else 0
        i = int(pods[row])
        stay_end[names[i] if k == 0 else f"{names[i]}-e{k}"] = float(seg[row, 3])
    return [(pod, a, b, stay_end.get(pod, math.inf)) for pod, a, b in spells]


def _on_grid(grid_rel: np.ndarray, start: float, end: float) -> tuple[int, int]:
    i0 = int(np.searchsorted(grid_rel, start - _EPS, side="left"))
    i1 = grid_rel.size if math.isinf(end) else int(np.searchsorted(grid_rel, end - _EPS, "left"))
    return i0, max(i1, i0)


def _write_cluster_extras(
    w: _Writer,
    workload: Workload,
    result: SimResult,
    grid: np.ndarray,
    shift: float,
    every: int,
    namespace: str,
    evicted_ttl_s: float,
) -> None:
    rel = np.asarray(result.times, dtype="float64")
    ts = grid + shift
    spells = pending_intervals(workload, result)
    w.family("kube_pod_created", "gauge", "Unix creation timestamp.")
    for pod, start, _placed, gone in _pod_lives(workload, result, spells):
        i0, i1 = _on_grid(rel, start, gone)
        at = np.arange(i0, i1, every)
        if at.size:
            created = grid[0] - rel[0] + start + shift
            labels = _labels(namespace=namespace, pod=pod)
            w.series_("kube_pod_created", labels, ts[at], np.full(at.size, created), ".3f")
    w.family("kube_pod_status_phase", "gauge", "The pods current phase.")
    for pod, start, end in spells:
        i0, i1 = _on_grid(rel, start, end)
        if i1 > i0:
            labels = _labels(namespace=namespace, pod=pod, phase="Pending")
            w.series_("kube_pod_status_phase", labels, ts[i0:i1], np.ones(i1 - i0), ".0f")
    seg = _sorted_segments(result)
    ev = _evicted_mask(workload, seg)
    names = [p.name for p in workload.pods]
    stay = np.zeros(seg.shape[0], dtype=np.int64)
    pods = seg[:, 0].astype(np.int64)
    for row in range(1, seg.shape[0]):
        stay[row] = stay[row - 1] + 1 if pods[row] == pods[row - 1] else 0
    w.family("kube_pod_status_reason", "gauge", "The pod status reasons.")
    for row in np.flatnonzero(ev).tolist():
        i = int(pods[row])
        name = names[i] if stay[row] == 0 else f"{names[i]}-e{stay[row]}"
        t_ev = float(seg[row, 3])
        i0, i1 = _on_grid(rel, t_ev, t_ev + evicted_ttl_s)
        if i1 > i0:
            labels = _labels(namespace=namespace, pod=name, reason="Evicted")
            w.series_("kube_pod_status_reason", labels, ts[i0:i1], np.ones(i1 - i0), ".0f")
    attr = ts[::every]
    nodes = workload.node_names
    w.family("kube_node_status_allocatable", "gauge", "The allocatable for different resources.")
    for node, cores, mem in zip(nodes, workload.cap_cpu, workload.cap_mem, strict=True):
        for resource, unit, value, fmt in (
            ("cpu", "core", float(cores) / 1000.0, ".10g"),
            ("memory", "byte", float(mem), ".0f"),
        ):
            labels = _labels(node=node, resource=resource, unit=unit)
            w.series_("kube_node_status_allocatable", labels, attr, np.full(attr.size, value), fmt)
    w.family("kube_node_spec_unschedulable", "gauge", "Whether a node can schedule new pods.")
    for node in nodes:
        w.series_(
            "kube_node_spec_unschedulable", _labels(node=node), attr, np.zeros(attr.size), ".0f"
        )
    w.family("kube_node_status_condition", "gauge", "The condition of a cluster node.")
    for node in nodes:
        labels = _labels(node=node, condition="Ready", status="true")
        w.series_("kube_node_status_condition", labels, attr, np.ones(attr.size), ".0f")


def _points(
    w: _Writer,
    family: str,
    ts: np.ndarray,
    rows: Sequence[tuple[str, str, np.ndarray, str]],
) -> None:
    """One histogram metric written point by point, as OpenMetrics requires: at each time
    every bucket, then ``_sum`` and ``_count``. ``rows`` are ``(suffix, labels, values,
    format)`` aligned with ``ts``."""
    n = ts.size
    if n == 0:
        return
    stamps = ts.astype(np.int64).tolist() if w.whole else [f"{t:.3f}" for t in ts]
    cols = [
        [f"{family}{suffix}{labels} {v:{fmt}} " for v in values.tolist()]
        for suffix, labels, values, fmt in rows
    ]
    w.fh.write("".join(f"{col[i]}{stamps[i]}\n" for i in range(n) for col in cols))
    w.series += len(rows)
    w.samples += n * len(rows)
    w.first, w.last = min(w.first, float(ts[0])), max(w.last, float(ts[-1]))


def _histogram(
    w: _Writer,
    family: str,
    labels: dict[str, str],
    ts: np.ndarray,
    step_idx: np.ndarray,
    values: np.ndarray,
    buckets: Sequence[float],
) -> None:
    """Cumulative histogram of ``values`` observed at steps ``step_idx``."""
    n = ts.size
    edges = np.asarray(buckets, dtype="float64")
    which = np.searchsorted(edges, values, side="left")  # bucket of each observation
    per_step = np.zeros((n, edges.size + 1))
    np.add.at(per_step, (step_idx, which), 1.0)
    cum = np.cumsum(np.cumsum(per_step, axis=1), axis=0)
    total = np.cumsum(np.bincount(step_idx, weights=values, minlength=n))
    _points(w, family, ts, _histogram_rows(labels, edges, cum, total))


def _histogram_rows(
    labels: dict[str, str], edges: np.ndarray, cum: np.ndarray, total: np.ndarray
) -> list[tuple[str, str, np.ndarray, str]]:
    les = [*(f"{b:g}" for b in edges), "+Inf"]
    rows = [("_bucket", _labels(**labels, le=le), cum[:, j], ".0f") for j, le in enumerate(les)]
    rows.append(("_sum", _labels(**labels), total, ".9g"))
    rows.append(("_count", _labels(**labels), cum[:, -1], ".0f"))
    return rows


def _write_kube_scheduler(w: _Writer, run: _Run, ts: np.ndarray, name: str) -> None:
    w.family("scheduler_pending_pods", "gauge", "Number of pending pods, by the queue type.")
    w.series_("scheduler_pending_pods", _labels(queue="unschedulable"), ts, run.pending, ".0f")
    if run.decisions is None:
        return
    t, secs, ok = run.decisions
    idx = _step_index(run.times, t)
    profile = PROFILES.get(name, name)
    w.family(
        "scheduler_schedule_attempts",
        "counter",
        "Number of attempts to schedule pods, by the result.",
    )
    for result, mask in (("scheduled", ok), ("unschedulable", ~ok)):
        counts = np.cumsum(np.bincount(idx[mask], minlength=ts.size))
        labels = _labels(profile=profile, result=result)
        w.series_("scheduler_schedule_attempts_total", labels, ts, counts, ".0f")
    fam = "scheduler_scheduling_attempt_duration_seconds"
    w.family(fam, "histogram", "Scheduling attempt latency in seconds.", "seconds")
    for result, mask in (("scheduled", ok), ("unschedulable", ~ok)):
        labels = {"profile": profile, "result": result}
        _histogram(w, fam, labels, ts, idx[mask], secs[mask], DECISION_BUCKETS)


def _write_sim(w: _Writer, runs: list[_Run], shift: float) -> None:
    fam = "hydatis_sim_node_cpu_utilization_ratio"
    w.family(fam, "histogram", "Node CPU utilisation, every node at every step (replay).")
    edges = np.asarray(CPU_BUCKETS)
    for r in runs:
        ts = r.epoch_s + r.times + shift
        cum = np.cumsum(r.cpu_hist, axis=0).astype("float64")
        rows = _histogram_rows({"scheduler": r.name}, edges, cum, np.cumsum(r.cpu_sum))
        _points(w, fam, ts, rows)
    gauges = (
        (
            "hydatis_sim_nodes",
            "Nodes in the replayed cluster.",
            lambda r: np.full(r.times.size, r.nodes),
        ),
        ("hydatis_sim_hot_nodes", f"Nodes above {HOT_THRESHOLD} CPU.", lambda r: r.hot),
        (
            "hydatis_sim_cpu_overloaded_nodes",
            "Nodes whose CPU demand exceeds capacity.",
            lambda r: r.overloaded,
        ),
    )
    for name, help_, values in gauges:
        w.family(name, "gauge", help_)
        for r in runs:
            ts = r.epoch_s + r.times + shift
            w.series_(name, _labels(scheduler=r.name), ts, values(r).astype("float64"), ".0f")
    w.family("hydatis_sim_pods", "gauge", "Pods alive (running or pending) and pending.")
    for r in runs:
        ts = r.epoch_s + r.times + shift
        for state, values in (("alive", r.alive), ("pending", r.pending)):
            w.series_("hydatis_sim_pods", _labels(scheduler=r.name, state=state), ts, values, ".0f")
    w.family("hydatis_sim_pods_impacted", "gauge", "Pods impacted at each step, by cause.")
    for r in runs:
        ts = r.epoch_s + r.times + shift
        for cause, values in r.impacted.items():
            labels = _labels(scheduler=r.name, cause=cause)
            w.series_("hydatis_sim_pods_impacted", labels, ts, values, ".0f")
    for name, help_, attr in (
        ("hydatis_sim_placements", "Pods bound to a node.", "placements"),
        ("hydatis_sim_evictions", "Pods evicted for memory.", "evictions"),
    ):
        w.family(name, "counter", help_)
        for r in runs:
            ts = r.epoch_s + r.times + shift
            counts = np.cumsum(getattr(r, attr)).astype("float64")
            w.series_(f"{name}_total", _labels(scheduler=r.name), ts, counts, ".0f")
    timed = [r for r in runs if r.decisions is not None]
    if timed:
        fam = "hydatis_sim_decision_seconds"
        w.family(fam, "histogram", "Time the scheduler took per pod (replay).", "seconds")
        for r in timed:
            t, secs, _ = r.decisions
            ts = r.epoch_s + r.times + shift
            idx = _step_index(r.times, t)
            _histogram(w, fam, {"scheduler": r.name}, ts, idx, secs, DECISION_BUCKETS)


def _write_scraped(w: _Writer, runs: list[_Run], shift: float) -> list[str]:
    """The services scraped during the runs; a family met in several runs' scrapes is
    written once (its series differ by ``instance``)."""
    merged: dict[str, _Family] = {}
    jobs: list[str] = []
    for r in runs:
        if r.scrape is None:
            continue
        for t in r.scrape.targets:
            if t.job not in jobs:
                jobs.append(t.job)
        for name, fam in r.scrape.families.items():
            target = merged.setdefault(name, _Family(fam.kind, fam.help))
            for key, (tt, vv) in fam.series.items():
                slot = target.series.setdefault(key, (array("d"), array("d")))
                slot[0].extend(np.asarray(tt) + r.epoch_s + shift)
                slot[1].extend(vv)
    for name, fam in merged.items():
        w.family(name, fam.kind, fam.help or name)
        if fam.kind == "histogram":
            _write_scraped_histogram(w, name, fam)
            continue
        for (sample, labels), (tt, vv) in sorted(fam.series.items()):
            t, v = _in_order(tt, vv)
            w.series_(sample, _labels(**dict(labels)), t, v, ".10g")
    return jobs


def _in_order(tt: array, vv: array) -> tuple[np.ndarray, np.ndarray]:
    """A series' samples by time, one per time."""
    t = np.frombuffer(tt, dtype="float64")
    order = np.argsort(t, kind="stable")
    t, v = t[order], np.frombuffer(vv, dtype="float64")[order]
    keep = np.r_[True, np.diff(t) > 0] if t.size else np.zeros(0, bool)
    return t[keep], v[keep]


def _write_scraped_histogram(w: _Writer, name: str, fam: _Family) -> None:
    """A scraped histogram, point by point per label set (buckets by ``le``, then
    ``_sum`` and ``_count``), at the times every one of its series was scraped."""
    groups: dict[tuple, list[tuple[str, str | None, np.ndarray, np.ndarray]]] = {}
    for (sample, labels), (tt, vv) in fam.series.items():
        lab = dict(labels)
        le = lab.pop("le", None)
        t, v = _in_order(tt, vv)
        groups.setdefault(tuple(sorted(lab.items())), []).append((sample, le, t, v))

    def order(row: tuple[str, str | None, np.ndarray, np.ndarray]) -> tuple[int, float]:
        sample, le = row[0], row[1]
        if sample.endswith("_bucket"):
            return 0, float(le) if le is not None else math.inf
        return (1 if sample.endswith("_sum") else 2), 0.0

    for base, rows in sorted(groups.items()):
        common = rows[0][2]
        for _, _, t, _ in rows[1:]:
            common = np.intersect1d(common, t)
        out = []
        for sample, le, t, v in sorted(rows, key=order):
            labels = dict(base) | ({"le": le} if le is not None else {})
            out.append((sample[len(name) :], _labels(**labels), v[np.isin(t, common)], ".10g"))
        _points(w, name, common, out)
