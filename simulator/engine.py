"""The discrete-time cluster simulator.

Each step of ``step_s`` seconds, in this order:

1. pods whose run ended leave their node;
2. pods whose trace start has come join the pending queue;
3. the load metrics schedulers see are refreshed when due (every
   ``metrics_interval_s``, showing the node samples of ``metrics_lag_s`` ago, as a
   metrics pipeline does);
4. the scheduler places pending pods, highest priority first then oldest, one
   ``select`` call each (a pod no node accepts stays pending; a scheduler with a
   ``waits(pod)`` hook leaves the pods it names alone, as a scheduler that is down does);
5. each running pod uses what its usage profile says at its age; a node's use is the sum
   of its pods' plus the non-pod load the trace records for it (its node series beyond
   the pods recorded on it);
6. a node whose memory use exceeds its capacity evicts pods (kubelet order: pods using
   more than they request first, then lowest priority, then largest excess) until it fits;
   evicted pods go back to the queue and are placed again;
7. impact is counted for the availability metric: a pod pending past
   ``pending_grace_s``, a pod on a node whose CPU demand exceeds its capacity, a pod
   evicted for memory (from its eviction until it runs again).

Same workload, scheduler and seed: same result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from hydatis.errors import ConfigError
from simulator.types import BindingLog, ClusterView, NodeMetrics, Scheduler
from simulator.workload import Workload

__all__ = ["ClusterControl", "SimConfig", "SimResult", "simulate"]

NOT_ARRIVED, PENDING, RUNNING, DONE = 0, 1, 2, 3
HOUR = 3600.0


@dataclass(frozen=True)
class SimConfig:
    """Simulator settings; every default is the one a real cluster has.

    Attributes:
        step_s: simulated seconds per step.
        metrics_lag_s: how old the newest node sample a scheduler sees is (metrics
            scrape + aggregation delay).
        metrics_interval_s: how often the schedulers' view of node metrics refreshes.
        load_window_s: the window of the mean / std a load watcher reports (Trimaran's
            load-watcher default, 15 min).
        pending_grace_s: a pod pending longer than this is impacted.
        max_pods: pods a node accepts (kubelet default 110).
        horizon_s: simulated span (None: the dataset's).
        warmup_s: time excluded from the metrics while the cluster fills (None: the
            dataset's ``ramp_s``, else 0).
        bindings_memory_s: how long bindings are remembered for load-aware schedulers.
    """

    step_s: float = 30.0
    metrics_lag_s: float = 60.0
    metrics_interval_s: float = 60.0
    load_window_s: float = 900.0
    pending_grace_s: float = 60.0
    max_pods: int = 110
    horizon_s: float | None = None
    warmup_s: float | None = None
    bindings_memory_s: float = 900.0

    def __post_init__(self) -> None:
        for key in ("step_s", "metrics_interval_s", "load_window_s", "bindings_memory_s"):
            if not getattr(self, key) > 0:
                value = getattr(self, key)
                raise ConfigError(f"simulator setting '{key}' must be > 0, got {value}")
        for key in ("metrics_lag_s", "pending_grace_s"):
            if getattr(self, key) < 0:
                value = getattr(self, key)
                raise ConfigError(f"simulator setting '{key}' must be >= 0, got {value}")
        if self.max_pods < 1:
            raise ConfigError(f"simulator setting 'max_pods' must be >= 1, got {self.max_pods}")
        for key in ("horizon_s", "warmup_s"):
            value = getattr(self, key)
            if value is not None and value < 0:
                raise ConfigError(f"simulator setting '{key}' must be >= 0, got {value}")


@dataclass
class SimResult:
    """Everything a run recorded; :mod:`simulator.metrics` turns it into figures.

    Node series are per step (rows) and node (columns): CPU utilisation as the node
    reports it (demand / capacity, capped at 1) and memory utilisation.
    """

    scheduler: str
    seed: int
    step_s: float
    warmup_s: float
    times: np.ndarray
    node_cpu: np.ndarray
    node_mem: np.ndarray
    cpu_overloaded_nodes: np.ndarray
    pods_alive: np.ndarray
    pods_impacted: np.ndarray
    impacted_pending: np.ndarray
    impacted_cpu: np.ndarray
    impacted_oom: np.ndarray
    pending: np.ndarray
    requested_cpu_share: np.ndarray
    requested_mem_share: np.ndarray
    latencies_s: np.ndarray
    pending_times_s: np.ndarray
    placements: int
    evictions: int
    never_placed: int
    cap_cpu: np.ndarray
    cap_mem: np.ndarray
    #: One row per stay of a pod on a node: (pod index, node index, start s, end s); a pod
    #: evicted and placed again has several rows; end is inf for a pod still running.
    segments: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    wall_s: float = 0.0
    extra: dict = field(default_factory=dict)


class _MetricsPipeline:
    """Node samples as a metrics pipeline keeps them: a ring of recent samples, their
    5-minute averages, and hourly maxima of those averages for a day, published with a
    lag."""

    def __init__(self, n: int, cfg: SimConfig, cap_cpu: np.ndarray, cap_mem: np.ndarray):
        self.cfg = cfg
        self.cap_cpu, self.cap_mem = cap_cpu.astype(float), cap_mem.astype(float)
        self.lag_steps = round(cfg.metrics_lag_s / cfg.step_s)
        keep = max(cfg.load_window_s, HOUR, 300.0) + cfg.metrics_lag_s
        self.size = int(np.ceil(keep / cfg.step_s)) + 2
        self.cpu = np.zeros((self.size, n), dtype=np.float32)
        self.mem = np.zeros((self.size, n), dtype=np.float32)
        # The 5-minute CPU average at each sample: Crane's maxima are taken over it
        # (max_over_time(cpu_usage_avg_5m[1h]) in its recording rules).
        self.avg5 = np.zeros((self.size, n), dtype=np.float32)
        self.t = np.full(self.size, -np.inf)
        self.count = 0
        self.hour_max = np.full((24, n), np.nan, dtype=np.float32)
        self.cur_hour = -1
        self.cur_max = np.full(n, np.nan, dtype=np.float32)
        self.visible = -1  # index (count) of the newest visible sample
        self.last_refresh = -np.inf

    def push(self, t: float, cpu_frac: np.ndarray, mem_frac: np.ndarray) -> None:
        i = self.count % self.size
        self.cpu[i], self.mem[i], self.t[i] = cpu_frac, mem_frac, t
        self.avg5[i] = self._window(self.cpu, t, 300.0).mean(axis=0)
        self.count += 1
        # The sample taken lag ago becomes visible now; fold it into the hourly maxima.
        vis = self.count - 1 - self.lag_steps
        if vis >= 0 and vis > self.visible:
            self.visible = vis
            j = vis % self.size
            hour = int(self.t[j] // HOUR)
            if hour != self.cur_hour:
                if self.cur_hour >= 0:
                    self.hour_max[self.cur_hour % 24] = self.cur_max
                self.cur_hour, self.cur_max = hour, self.avg5[j].copy()
            else:
                np.fmax(self.cur_max, self.avg5[j], out=self.cur_max)

    def _window(self, arr: np.ndarray, t_end: float, span: float) -> np.ndarray:
        sel = (self.t > t_end - span) & (self.t <= t_end)
        return arr[sel]

    def refresh(self, now: float, metrics: NodeMetrics) -> bool:
        """Refresh ``metrics`` in place when an interval has passed; True if refreshed."""
        if self.visible < 0 or now - self.last_refresh < self.cfg.metrics_interval_s:
            return False
        self.last_refresh = now
        j = self.visible % self.size
        t_vis = float(self.t[j])
        metrics.updated_at[:] = t_vis
        metrics.window_end = t_vis
        metrics.cpu_used[:] = self.cpu[j] * self.cap_cpu
        metrics.mem_used[:] = self.mem[j] * self.cap_mem
        win_cpu = self._window(self.cpu, t_vis, self.cfg.load_window_s)
        win_mem = self._window(self.mem, t_vis, self.cfg.load_window_s)
        metrics.cpu_avg[:], metrics.cpu_std[:] = win_cpu.mean(axis=0), win_cpu.std(axis=0)
        metrics.mem_avg[:], metrics.mem_std[:] = win_mem.mean(axis=0), win_mem.std(axis=0)
        metrics.cpu_avg_5m[:] = self.avg5[j]
        metrics.cpu_max_1h[:] = self._window(self.avg5, t_vis, HOUR).max(axis=0)
        day = np.vstack([self.hour_max, self.cur_max[None, :]])
        with np.errstate(invalid="ignore"):
            metrics.cpu_max_1d[:] = np.nanmax(day, axis=0)
        return True


# ---- cluster-control hook (simulator.k8s_api.ReplayCluster) ----------------------------
class ClusterControl(Protocol):
    """Actions taken on the replay from outside the scheduler (e.g. by the remediation
    service through :mod:`simulator.k8s_api`). ``step`` runs once per step, after the
    metrics refresh and before scheduling; it may change ``view`` (a cordon sets a node's
    ``max_pods`` to 0) and returns the indices of running pods to evict through the
    Eviction API: they leave their node and are queued again (counted in
    ``SimResult.extra["api_evictions"]``, not as OOM evictions)."""

    def step(
        self, t: float, view: ClusterView, state: np.ndarray, pod_node: np.ndarray
    ) -> Iterable[int]: ...


# -----------------------------------------------------------------------------------------


def _evict_order(pods: np.ndarray, used: np.ndarray, req: np.ndarray, prio: np.ndarray):
    """kubelet's memory-pressure ranking: over-request first, low priority, big excess."""
    excess = used - req
    return pods[np.lexsort((-excess, prio, ~(excess > 0)))]


def simulate(
    workload: Workload,
    scheduler: Scheduler,
    *,
    seed: int = 0,
    config: SimConfig | None = None,
    progress: Callable[[float], None] | None = None,
    control: ClusterControl | None = None,
) -> SimResult:
    """Replay ``workload`` with ``scheduler`` and record what happened.

    Args:
        workload: the compiled dataset (:func:`simulator.workload.compile_workload`).
        scheduler: the policy placing pods; reset with ``seed`` first.
        seed: seeds the scheduler's random choices.
        config: simulator settings.
        progress: called with the fraction of the horizon done, now and then.
        control: actions taken from outside the scheduler (:class:`ClusterControl`).
    """
    cfg = config or SimConfig()
    wall0 = time.perf_counter()
    scheduler.reset(seed)
    n, p = workload.n_nodes, workload.n_pods
    horizon = cfg.horizon_s if cfg.horizon_s is not None else workload.horizon
    warmup = cfg.warmup_s if cfg.warmup_s is not None else workload.warmup
    steps = int(np.floor(horizon / cfg.step_s)) + 1
    view = ClusterView.empty(workload.cap_cpu, workload.cap_mem, max_pods=cfg.max_pods)
    view.bindings = BindingLog()
    pipeline = _MetricsPipeline(n, cfg, workload.cap_cpu, workload.cap_mem)
    cap_cpu_f, cap_mem_f = workload.cap_cpu.astype(float), workload.cap_mem.astype(float)

    state = np.full(p, NOT_ARRIVED, dtype=np.int8)
    pod_node = np.full(p, -1, dtype=np.int64)
    started = np.zeros(p)
    run_end = np.full(p, np.inf)
    remaining = workload.duration.copy()
    pending_since = np.zeros(p)
    evicted = np.zeros(p, dtype=bool)
    placed_once = np.zeros(p, dtype=bool)
    next_arrival = 0
    pending: list[int] = []
    specs, prio = workload.pods, workload.priority
    # Dominance keys: a pod asking no less than one that just failed fails too.
    cpu_lim = np.array([s.cpu_limit or 0 for s in specs], dtype=np.int64)
    mem_lim = np.array([s.mem_limit or 0 for s in specs], dtype=np.int64)
    dom = np.stack(
        [
            np.array([s.nz_cpu_req for s in specs], dtype=np.int64),
            np.array([s.nz_mem_req for s in specs], dtype=np.int64),
            np.maximum(cpu_lim, workload.req_cpu),
            np.maximum(mem_lim, workload.req_mem),
        ],
        axis=1,
    )

    rec = {
        k: np.zeros(steps, dtype=np.int64)
        for k in ("over", "alive", "imp", "imp_p", "imp_c", "imp_o", "pend")
    }
    node_cpu = np.zeros((steps, n), dtype=np.float32)
    node_mem = np.zeros((steps, n), dtype=np.float32)
    req_cpu_share = np.zeros(steps)
    req_mem_share = np.zeros(steps)
    latencies: list[float] = []
    pending_times: list[float] = []
    segments: list[tuple[int, int, float, float]] = []
    seg_of = np.full(p, -1, dtype=np.int64)  # the open segment of each running pod
    placements = evictions = 0
    api_evictions = 0  # cluster-control hook
    total_alloc_cpu = float(view.alloc_cpu.sum())
    total_alloc_mem = float(view.alloc_mem.sum())
    report_every = max(1, steps // 200)

    for k in range(steps):
        t = k * cfg.step_s
        view.now = t
        # 1. completions
        running = np.flatnonzero(state == RUNNING)
        ended = running[run_end[running] <= t]
        for i in ended.tolist():
            view.unbind(specs[i], int(pod_node[i]))
            segments[seg_of[i]] = (*segments[seg_of[i]][:3], float(run_end[i]))
            state[i] = DONE
            pod_node[i] = -1
        # 2. arrivals
        while next_arrival < p and workload.arrival[next_arrival] <= t:
            i = next_arrival
            state[i] = PENDING
            pending_since[i] = workload.arrival[i]
            pending.append(i)
            next_arrival += 1
        # 3. metrics
        pipeline.refresh(t, view.metrics)
        on_step = getattr(scheduler, "on_step", None)
        if on_step is not None:  # e.g. the ML scheduler pushes node state to its extender
            on_step(view)
        if k % 64 == 0:
            view.bindings.prune(t - cfg.bindings_memory_s)
        # ---- cluster-control hook: cordons and Eviction-API evictions ----------------
        if control is not None:
            for i in control.step(t, view, state, pod_node):
                if state[i] != RUNNING:
                    continue
                view.unbind(specs[i], int(pod_node[i]))
                segments[seg_of[i]] = (*segments[seg_of[i]][:3], t)
                remaining[i] = max(run_end[i] - t, 0.0)
                state[i], pod_node[i] = PENDING, -1
                pending_since[i] = t
                pending.append(i)
                api_evictions += 1
        # ------------------------------------------------------------------------------
        # 4. scheduling
        if pending:
            pending.sort(key=lambda i: (-prio[i], pending_since[i], i))
            failed = np.empty((0, dom.shape[1]), dtype=dom.dtype)
            still: list[int] = []
            # a pod whose scheduler is not running waits without an attempt (and without
            # counting as a failed fit for the pods behind it)
            waits = getattr(scheduler, "waits", None)
            for i in pending:
                if waits is not None and waits(specs[i]):
                    still.append(i)
                    continue
                key = dom[i]
                if failed.size and np.any(np.all(failed <= key, axis=1)):
                    still.append(i)
                    continue
                t_call = time.perf_counter()
                node = scheduler.select(specs[i], view)
                latencies.append(time.perf_counter() - t_call)
                if node is None:
                    failed = np.vstack((failed, key))
                    still.append(i)
                    continue
                view.bind(specs[i], node)
                state[i], pod_node[i], started[i] = RUNNING, node, t
                seg_of[i] = len(segments)
                segments.append((i, node, t, np.inf))
                run_end[i] = t + remaining[i]
                pending_times.append(t - pending_since[i])
                evicted[i] = False
                placed_once[i] = True
                placements += 1
            pending = still
        # 5. usage
        running = np.flatnonzero(state == RUNNING)
        age = t - started[running]
        idx = np.minimum((age // workload.usage_step).astype(np.int64), workload.count[running] - 1)
        idx += workload.offset[running]
        cpu_use = workload.usage_cpu[idx]
        mem_use = workload.usage_mem[idx]
        where = pod_node[running]
        cpu_dem = np.bincount(where, cpu_use, minlength=n).astype(np.float64)
        mem_dem = np.bincount(where, mem_use, minlength=n).astype(np.float64)
        if workload.bg_cpu is not None:  # non-pod load the trace records
            j = min(int(t // workload.bg_step), workload.bg_cpu.shape[0] - 1)
            cpu_dem = cpu_dem + workload.bg_cpu[j]
            mem_dem = mem_dem + workload.bg_mem[j]
        # 6. OOM evictions
        oom_now: list[int] = []
        for node in np.flatnonzero(mem_dem > cap_mem_f).tolist():
            on = where == node
            order = _evict_order(
                running[on], mem_use[on], workload.req_mem[running[on]], prio[running[on]]
            )
            use_of = dict(zip(running[on].tolist(), mem_use[on].tolist(), strict=True))
            cpu_of = dict(zip(running[on].tolist(), cpu_use[on].tolist(), strict=True))
            for i in order.tolist():
                if mem_dem[node] <= cap_mem_f[node]:
                    break
                mem_dem[node] -= use_of[i]
                cpu_dem[node] -= cpu_of[i]
                view.unbind(specs[i], node)
                segments[seg_of[i]] = (*segments[seg_of[i]][:3], t)
                remaining[i] = max(run_end[i] - t, 0.0)
                state[i], pod_node[i], evicted[i] = PENDING, -1, True
                pending_since[i] = t
                pending.append(i)
                oom_now.append(i)
                evictions += 1
        # 7. impact accounting
        over = cpu_dem > cap_cpu_f
        running = np.flatnonzero(state == RUNNING)
        imp_cpu = int(over[pod_node[running]].sum()) if over.any() else 0
        if pending:
            pend = np.asarray(pending)
            late = (t - pending_since[pend] > cfg.pending_grace_s) | evicted[pend]
            imp_oom = int(evicted[pend].sum())
            imp_pend = int(late.sum()) - imp_oom
        else:
            imp_oom = imp_pend = 0
        rec["over"][k] = int(over.sum())
        rec["alive"][k] = running.size + len(pending)
        rec["imp_c"][k], rec["imp_o"][k], rec["imp_p"][k] = imp_cpu, imp_oom, imp_pend
        rec["imp"][k] = imp_cpu + imp_oom + imp_pend
        rec["pend"][k] = len(pending)
        cpu_frac = np.minimum(cpu_dem / cap_cpu_f, 1.0)
        mem_frac = np.minimum(mem_dem / cap_mem_f, 1.0)
        node_cpu[k], node_mem[k] = cpu_frac, mem_frac
        req_cpu_share[k] = view.req_cpu.sum() / total_alloc_cpu
        req_mem_share[k] = view.req_mem.sum() / total_alloc_mem
        pipeline.push(t, cpu_frac, mem_frac)
        if progress is not None and (k % report_every == 0 or k == steps - 1):
            progress((k + 1) / steps)

    never = int(np.sum((state == PENDING) & ~placed_once))
    scheduler.close()
    return SimResult(
        scheduler=getattr(scheduler, "name", type(scheduler).__name__),
        seed=seed,
        step_s=cfg.step_s,
        warmup_s=warmup,
        times=np.arange(steps) * cfg.step_s,
        node_cpu=node_cpu,
        node_mem=node_mem,
        cpu_overloaded_nodes=rec["over"],
        pods_alive=rec["alive"],
        pods_impacted=rec["imp"],
        impacted_pending=rec["imp_p"],
        impacted_cpu=rec["imp_c"],
        impacted_oom=rec["imp_o"],
        pending=rec["pend"],
        requested_cpu_share=req_cpu_share,
        requested_mem_share=req_mem_share,
        latencies_s=np.asarray(latencies),
        pending_times_s=np.asarray(pending_times),
        placements=placements,
        evictions=evictions,
        never_placed=never,
        cap_cpu=workload.cap_cpu,
        cap_mem=workload.cap_mem,
        segments=np.asarray(segments, dtype=np.float64).reshape(-1, 4),
        wall_s=time.perf_counter() - wall0,
        extra={"api_evictions": api_evictions} if control is not None else {},
    )
