"""What a scheduler sees and the one interface every scheduler implements.

Units follow Kubernetes: CPU in millicores, memory in bytes (integers where the upstream
code uses integer arithmetic). Node-indexed values are numpy arrays in the cluster's node
order, so a scheduler scores all candidate nodes with a few vector operations.

A scheduler never mutates the view: the simulator binds the chosen pod and updates the
view itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "DEFAULT_MEMORY_REQUEST",
    "DEFAULT_MILLI_CPU_REQUEST",
    "UNSET",
    "BindingLog",
    "ClusterView",
    "FrameworkScheduler",
    "NodeMetrics",
    "PodSpec",
    "RecentBindings",
    "Scheduler",
    "WindowSum",
    "fit_filter",
    "num_feasible_nodes_to_find",
]

# kube-scheduler's defaults for a container that sets no request (pkg/scheduler/util):
# only the LeastAllocated score uses them; the fit filter and BalancedAllocation do not.
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
UNSET = -1  # a request or limit that is not set, in integer arrays
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5


@dataclass(frozen=True)
class PodSpec:
    """A pod as a scheduler sees it: one container's requests and limits.

    ``None`` means "not set", which differs from an explicit 0 (kube-scheduler applies its
    non-zero defaults only to a missing request).
    """

    name: str
    cpu_request: int | None  # millicores
    mem_request: int | None  # bytes
    cpu_limit: int | None = None
    mem_limit: int | None = None
    priority: int = 0
    qos: str = "Burstable"  # Guaranteed | Burstable | BestEffort

    @property
    def cpu_req(self) -> int:
        """Raw CPU request (missing counts as 0): what the fit filter uses."""
        return self.cpu_request or 0

    @property
    def mem_req(self) -> int:
        """Raw memory request (missing counts as 0)."""
        return self.mem_request or 0

    @property
    def nz_cpu_req(self) -> int:
        """CPU request with kube-scheduler's default for a missing one (100m)."""
        return DEFAULT_MILLI_CPU_REQUEST if self.cpu_request is None else self.cpu_request

    @property
    def nz_mem_req(self) -> int:
        """Memory request with kube-scheduler's default for a missing one (200 MiB)."""
        return DEFAULT_MEMORY_REQUEST if self.mem_request is None else self.mem_request


@dataclass
class NodeMetrics:
    """Node load as a metrics pipeline reports it: late by the simulator's metrics lag.

    All arrays are node-indexed. A NaN means the node has no such metric (yet). Fractions
    are of the node's capacity.

    Attributes:
        updated_at: when each node's latest visible sample was taken (s); NaN = never.
        window_end: end of the metrics window the latest samples summarise (s), as the
            Trimaran load-watcher reports it.
        cpu_used: CPU in use at that sample (millicores).
        mem_used: memory in use at that sample (bytes).
        cpu_avg / cpu_std, mem_avg / mem_std: mean and standard deviation of the
            utilisation fraction over the load-watcher window (default 15 min).
        cpu_avg_5m, cpu_max_1h, cpu_max_1d: Crane's usage annotations (fractions): the
            5-minute average, and the maxima of that average over 1 hour and 1 day.
    """

    updated_at: np.ndarray
    window_end: float
    cpu_used: np.ndarray
    mem_used: np.ndarray
    cpu_avg: np.ndarray
    cpu_std: np.ndarray
    mem_avg: np.ndarray
    mem_std: np.ndarray
    cpu_avg_5m: np.ndarray
    cpu_max_1h: np.ndarray
    cpu_max_1d: np.ndarray

    @classmethod
    def empty(cls, n: int) -> NodeMetrics:
        """Metrics of a cluster that has reported nothing yet."""
        nan = np.full(n, np.nan)
        return cls(nan.copy(), float("nan"), *(nan.copy() for _ in range(9)))


@dataclass
class RecentBindings:
    """Pods bound in a time range, as parallel arrays (``UNSET`` for unset values)."""

    time: np.ndarray
    node: np.ndarray
    cpu_request: np.ndarray
    mem_request: np.ndarray
    cpu_limit: np.ndarray
    mem_limit: np.ndarray

    def __len__(self) -> int:
        return int(self.time.size)


_LOG_FIELDS = ("time", "node", "cpu_request", "mem_request", "cpu_limit", "mem_limit")


class BindingLog:
    """Every binding the scheduler made, in time order: what a scheduler's own cache of
    recently scheduled pods holds (Trimaran's ScheduledPodsCache, Koordinator's assign
    cache, Crane's binding records).

    Backed by growable numpy arrays so a time window is a zero-copy slice. Positions are
    *absolute* (they survive :meth:`prune`), so a :class:`WindowSum` can follow the log
    incrementally. ``version`` changes on every append or prune (a cache key).
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._arrays = {
            name: np.empty(capacity, dtype=np.float64 if name == "time" else np.int64)
            for name in _LOG_FIELDS
        }
        self._n = 0  # entries held
        self.base = 0  # absolute position of entry 0
        self.version = 0

    def __len__(self) -> int:
        return self._n

    @property
    def end(self) -> int:
        """Absolute position the next binding will get."""
        return self.base + self._n

    @property
    def time(self) -> np.ndarray:
        """Binding times of the entries held (a view)."""
        return self._arrays["time"][: self._n]

    def append(self, t: float, node: int, pod: PodSpec) -> None:
        """Record that ``pod`` was bound to node index ``node`` at time ``t``."""
        if self._n == self._arrays["time"].size:
            for name, arr in self._arrays.items():
                grown = np.empty(arr.size * 2, dtype=arr.dtype)
                grown[: self._n] = arr[: self._n]
                self._arrays[name] = grown
        i, a = self._n, self._arrays
        a["time"][i] = t
        a["node"][i] = node
        a["cpu_request"][i] = UNSET if pod.cpu_request is None else pod.cpu_request
        a["mem_request"][i] = UNSET if pod.mem_request is None else pod.mem_request
        a["cpu_limit"][i] = UNSET if pod.cpu_limit is None else pod.cpu_limit
        a["mem_limit"][i] = UNSET if pod.mem_limit is None else pod.mem_limit
        self._n += 1
        self.version += 1

    def first_after(self, t0: float) -> int:
        """Absolute position of the first binding made strictly after ``t0``."""
        return self.base + int(np.searchsorted(self.time, t0, side="right"))

    def window(self, lo: int, hi: int) -> RecentBindings:
        """Bindings at absolute positions ``[lo, hi)`` (clipped to what is held)."""
        lo, hi = max(lo - self.base, 0), max(min(hi - self.base, self._n), 0)
        return RecentBindings(*(self._arrays[name][lo:hi] for name in _LOG_FIELDS))

    def since(self, t0: float) -> RecentBindings:
        """Bindings made strictly after time ``t0`` (views, not copies)."""
        return self.window(self.first_after(t0), self.end)

    def prune(self, before: float) -> None:
        """Forget bindings older than ``before`` (no scheduler looks back further)."""
        cut = int(np.searchsorted(self.time, before, side="left"))
        if cut:
            for arr in self._arrays.values():
                arr[: self._n - cut] = arr[cut : self._n]
            self._n -= cut
            self.base += cut
            self.version += 1


class WindowSum:
    """Per-node sum of a per-binding value over the bindings made after a moving time.

    ``get(log, t0, n)`` returns, for each of ``n`` nodes, the sum of ``value(bindings)``
    over the bindings made strictly after ``t0``. It updates incrementally (adds the new
    bindings, subtracts those that fell out of the window), so a scheduler pays for each
    binding twice rather than for the whole window on every pod. ``t0`` is expected to
    move forward; if it moves back, or the log was pruned past the window, the sum is
    rebuilt. Values are integers held in float64, so adding and subtracting is exact.
    """

    def __init__(self, value: Callable[[RecentBindings], np.ndarray]) -> None:
        self.value = value
        self._acc: np.ndarray | None = None
        self._lo = self._hi = 0
        self._log_id = 0

    def _add(self, log: BindingLog, lo: int, hi: int, sign: float) -> None:
        chunk = log.window(lo, hi)
        if len(chunk):
            n = self._acc.size
            self._acc += sign * np.bincount(chunk.node, self.value(chunk), minlength=n)

    def get(self, log: BindingLog, t0: float, n: int) -> np.ndarray:
        """Per-node sums over the bindings after ``t0`` (do not modify the result)."""
        lo = log.first_after(t0)
        fresh = (
            self._acc is None
            or self._acc.size != n
            or self._log_id != id(log)
            or lo < self._lo
            or self._lo < log.base
        )
        if fresh:
            self._acc = np.zeros(n)
            self._lo = self._hi = lo
            self._log_id = id(log)
        if log.end > self._hi:
            self._add(log, self._hi, log.end, 1.0)
            self._hi = log.end
        if lo > self._lo:
            self._add(log, self._lo, min(lo, self._hi), -1.0)
            self._lo = lo
        return self._acc


@dataclass
class ClusterView:
    """The cluster's state at one instant, as a scheduler may read it.

    Attributes:
        now: simulated time (s).
        cap_cpu, cap_mem: node capacity (millicores, bytes).
        alloc_cpu, alloc_mem: node allocatable (millicores, bytes).
        req_cpu, req_mem: sum of the raw requests of the pods bound to each node.
        nz_req_cpu, nz_req_mem: the same with kube-scheduler's non-zero defaults.
        pod_count, max_pods: pods bound to each node and the node's pod limit.
        metrics: the (lagged) load metrics.
        bindings: the scheduler's record of its own recent bindings.
        lim_cpu, lim_mem: sum of the limits of the pods bound to each node (unset = 0,
            as the offline features count them): the node-state feed's limit ratios.
    """

    now: float
    cap_cpu: np.ndarray
    cap_mem: np.ndarray
    alloc_cpu: np.ndarray
    alloc_mem: np.ndarray
    req_cpu: np.ndarray
    req_mem: np.ndarray
    nz_req_cpu: np.ndarray
    nz_req_mem: np.ndarray
    pod_count: np.ndarray
    max_pods: np.ndarray
    metrics: NodeMetrics
    bindings: BindingLog = field(default_factory=BindingLog)
    lim_cpu: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    lim_mem: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        n = self.cap_cpu.size
        if self.lim_cpu.size != n:
            self.lim_cpu = np.zeros(n, dtype=np.int64)
        if self.lim_mem.size != n:
            self.lim_mem = np.zeros(n, dtype=np.int64)

    @property
    def n_nodes(self) -> int:
        """Number of nodes in the cluster."""
        return int(self.cap_cpu.size)

    @classmethod
    def empty(
        cls, cap_cpu: np.ndarray, cap_mem: np.ndarray, max_pods: int = 110, now: float = 0.0
    ) -> ClusterView:
        """A cluster with nothing bound and no metrics; allocatable = capacity."""
        cap_cpu = np.asarray(cap_cpu, dtype=np.int64)
        cap_mem = np.asarray(cap_mem, dtype=np.int64)
        n = cap_cpu.size
        zeros = np.zeros(n, dtype=np.int64)
        return cls(
            now=now,
            cap_cpu=cap_cpu,
            cap_mem=cap_mem,
            alloc_cpu=cap_cpu.copy(),
            alloc_mem=cap_mem.copy(),
            req_cpu=zeros.copy(),
            req_mem=zeros.copy(),
            nz_req_cpu=zeros.copy(),
            nz_req_mem=zeros.copy(),
            pod_count=zeros.copy(),
            max_pods=np.full(n, max_pods, dtype=np.int64),
            metrics=NodeMetrics.empty(n),
        )

    def bind(self, pod: PodSpec, node: int) -> None:
        """Account ``pod`` on ``node`` (the simulator calls this, never a scheduler)."""
        self.req_cpu[node] += pod.cpu_req
        self.req_mem[node] += pod.mem_req
        self.nz_req_cpu[node] += pod.nz_cpu_req
        self.nz_req_mem[node] += pod.nz_mem_req
        self.pod_count[node] += 1
        self.lim_cpu[node] += pod.cpu_limit or 0
        self.lim_mem[node] += pod.mem_limit or 0
        self.bindings.append(self.now, node, pod)

    def unbind(self, pod: PodSpec, node: int) -> None:
        """Release ``pod``'s requests from ``node`` (the pod ended or was evicted)."""
        self.req_cpu[node] -= pod.cpu_req
        self.req_mem[node] -= pod.mem_req
        self.nz_req_cpu[node] -= pod.nz_cpu_req
        self.nz_req_mem[node] -= pod.nz_mem_req
        self.pod_count[node] -= 1
        self.lim_cpu[node] -= pod.cpu_limit or 0
        self.lim_mem[node] -= pod.mem_limit or 0


def fit_filter(pod: PodSpec, view: ClusterView) -> np.ndarray:
    """NodeResourcesFit's filter: which nodes have room for the pod's raw requests.

    A node fails when it already holds ``max_pods`` pods (checked first upstream), or when
    ``allocatable < requested + pod request`` for CPU or memory; equality fits. Missing
    requests count as 0 here (no non-zero defaults).
    """
    ok = view.pod_count < view.max_pods
    if pod.cpu_req:
        ok &= view.alloc_cpu >= view.req_cpu + pod.cpu_req
    if pod.mem_req:
        ok &= view.alloc_mem >= view.req_mem + pod.mem_req
    return ok


def num_feasible_nodes_to_find(n_nodes: int, percentage: int = 0) -> int:
    """kube-scheduler's numFeasibleNodesToFind (percentageOfNodesToScore).

    Fewer than 100 nodes: all of them. Otherwise ``percentage`` (0 = adaptive:
    ``max(50 - N // 125, 5)``) percent of the nodes, but at least 100.
    """
    if n_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return n_nodes
    if percentage <= 0:
        percentage = max(50 - n_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(n_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


class Scheduler(ABC):
    """One scheduling policy: pick a node for a pod given the cluster's state.

    Implementations are deterministic given ``seed`` (passed to :meth:`reset`).
    """

    name: str = "scheduler"

    def reset(self, seed: int) -> None:
        """Start a new run: reseed the random generator and clear per-run state."""
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def select(self, pod: PodSpec, view: ClusterView) -> int | None:
        """Return the index of the node to bind ``pod`` to, or None to leave it pending."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources held for a run (connections, processes)."""


class FrameworkScheduler(Scheduler):
    """A scheduler-framework profile: the fit filter and the plugin's own filter, then
    its score over the candidates, then a uniformly random pick among the best.

    Like kube-scheduler, it stops filtering once it has found
    :func:`num_feasible_nodes_to_find` feasible nodes, starting where the previous cycle
    stopped (``nextStartNodeIndex``), so with many nodes only a rotating subset is scored.
    """

    #: percentageOfNodesToScore (0 = kube-scheduler's adaptive default).
    percentage_of_nodes_to_score: int = 0

    def reset(self, seed: int) -> None:
        super().reset(seed)
        self._next_start = 0

    def filter(self, pod: PodSpec, view: ClusterView) -> np.ndarray | None:
        """The plugin's own filter over all nodes (None: it has none)."""
        return None

    @abstractmethod
    def score(self, pod: PodSpec, view: ClusterView, nodes: np.ndarray) -> np.ndarray:
        """Scores (higher is better) of the candidate node indices ``nodes``."""

    def candidates(self, pod: PodSpec, view: ClusterView) -> np.ndarray:
        """Feasible node indices in visiting order, limited as kube-scheduler limits them."""
        feasible = fit_filter(pod, view)
        extra = self.filter(pod, view)
        if extra is not None:
            feasible &= extra
        n = view.n_nodes
        start = getattr(self, "_next_start", 0) % max(n, 1)
        found = np.flatnonzero(feasible)
        if start:  # visit from the start index, wrapping around
            k = int(np.searchsorted(found, start))
            found = np.concatenate((found[k:], found[:k]))
        want = num_feasible_nodes_to_find(n, self.percentage_of_nodes_to_score)
        if found.size > want:
            found = found[:want]
            processed = (int(found[-1]) - start) % n + 1
        else:
            processed = n
        self._next_start = (start + processed) % max(n, 1)
        return found

    def select(self, pod: PodSpec, view: ClusterView) -> int | None:
        nodes = self.candidates(pod, view)
        if nodes.size == 0:
            return None
        if nodes.size == 1:
            return int(nodes[0])
        scores = np.asarray(self.score(pod, view, nodes))
        best = np.flatnonzero(scores == scores.max())
        pick = best[0] if best.size == 1 else best[self.rng.integers(best.size)]
        return int(nodes[pick])
