"""The extender's decisions, independent of HTTP: refresh, filter, prioritize.

Per request the work is vector arithmetic over the candidates read from the current
:class:`~scheduler_shim.state.Snapshot`, plus — for prioritize only — one batched,
deadline-bound call to the placement agent. Whatever happens behind it, an answer leaves
within ``deadline_s``: no state, stale state, an unknown node, a model that errs or is
late, all give neutral values and a counted, logged fallback; the request itself never
fails for those reasons.

Shadow mode decides and logs, then answers neutrally; progressive rollout lets the models
decide for ``rollout_percent`` of pods, chosen by a stable hash of the pod UID (the same
pod always takes the same path, so raising 10 → 50 → 100 only adds pods).
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import numpy as np

from hydatis.models.placement_features import FEATURES, cluster_scalars, placement_features
from scheduler_shim._http import HttpPool
from scheduler_shim.ab import ABArms
from scheduler_shim.config import ShimConfig
from scheduler_shim.live import RESOURCES, LiveAccuracy
from scheduler_shim.metrics import ExtenderMetrics
from scheduler_shim.models import ModelCallError, httpx_post, open_clients
from scheduler_shim.protocol import ExtenderArgs, filter_result, parse_args, priority_list
from scheduler_shim.scoring import (
    NEUTRAL,
    agent_part,
    combine,
    filter_reasons,
    load_part,
    stretch,
)
from scheduler_shim.state import Ledger, NodeRows, Snapshot, node_arrays

__all__ = ["NEUTRAL_SCORE", "Extender", "rollout_bucket"]

log = logging.getLogger(__name__)

#: The score every node gets when the models do not decide (a constant: no preference).
NEUTRAL_SCORE = 5
_LOG_EVERY_S = 10.0
_MAX_PREFETCHED = 4096  # agent calls started at filter, awaiting their prioritize


def rollout_bucket(uid: str) -> float:
    """A stable position in [0, 100) for a pod UID (first 8 bytes of its SHA-256)."""
    digest = hashlib.sha256(uid.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


def _keep_all(args: ExtenderArgs) -> dict[str, Any]:
    return filter_result(args, [True] * len(args.node_names), {})


def _neutral(args: ExtenderArgs) -> list[dict[str, Any]]:
    return priority_list(args.node_names, [NEUTRAL_SCORE] * len(args.node_names))


class Extender:
    """The extender service's core.

    Args:
        config: the settings.
        client: an HTTP client for the model servers (tests inject one with an in-process
            transport); None = keep-alive connection pools opened by :meth:`start`.
        metrics: where to count (a fresh registry if None).
        clock: monotonic seconds (tests pass a fake to age the state).
    """

    def __init__(
        self,
        config: ShimConfig,
        *,
        client: httpx.AsyncClient | None = None,
        metrics: ExtenderMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.metrics = metrics or ExtenderMetrics()
        self.clock = clock
        self.ledger = Ledger(config.reporting_interval_s)
        self._client = client
        self._pools: list[HttpPool] = []
        self._prefetched: OrderedDict[str, tuple[tuple[str, ...], int, asyncio.Future]] = (
            OrderedDict()
        )
        self._snapshot: Snapshot | None = None
        self._cluster: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
        self._version = 0
        self._refresh_lock = asyncio.Lock()
        self._last_log: dict[str, float] = {}
        self.load_client = self.anomaly_client = self.agent_client = None
        self.ab = ABArms(config, self.metrics.registry)  # A/B test arms (scheduler_shim.ab)
        self.live = LiveAccuracy(config.load_horizon_s, config.live_accuracy_window_s)
        self.metrics.init_labels(
            mode=config.mode,
            rollout_percent=config.rollout_percent,
            gates={"cpu": config.accuracy_gate_cpu, "memory": config.accuracy_gate_memory},
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the model clients (a lifespan hook calls this, never the constructor).

        With an injected httpx client (tests) every call goes through it; otherwise each
        model server gets a pool of keep-alive connections (:mod:`scheduler_shim._http`).
        """
        c, m = self.config, self.metrics.observe_model

        def poster(url: str):
            if self._client is not None:
                return httpx_post(self._client, url)
            pool = HttpPool(url)
            self._pools.append(pool)
            return pool.post

        self.load_client, self.anomaly_client, self.agent_client = open_clients(
            poster, c, m, load_url=c.load_url, anomaly_url=c.anomaly_url, agent_url=c.agent_url
        )
        self.metrics.init_models(
            cl.model for cl in (self.load_client, self.anomaly_client, self.agent_client) if cl
        )
        self.ab.start(poster, m)

    async def close(self) -> None:
        """Close what :meth:`start` opened."""
        for _, _, task in self._prefetched.values():
            task.cancel()
        self._prefetched.clear()
        for pool in self._pools:
            await pool.close()
        self._pools.clear()

    # ------------------------------------------------------------------ state

    @property
    def snapshot(self) -> Snapshot | None:
        """The current node state (None before the first refresh)."""
        return self._snapshot

    def state_age(self) -> float:
        """Seconds since the last refresh finished (inf before the first)."""
        s = self._snapshot
        return float("inf") if s is None else self.clock() - s.received_at

    def ready(self) -> bool:
        """Whether the state is fresh enough to decide on."""
        return self.state_age() <= self.config.stale_after_s

    def now(self) -> float:
        """The current time on the snapshot's clock (its rows' time + elapsed)."""
        s = self._snapshot
        return float("nan") if s is None else s.time + (self.clock() - s.received_at)

    def install(self, snapshot: Snapshot) -> None:
        """Make ``snapshot`` current (a refresh here, or one shared by another replica)."""
        self._cluster = cluster_scalars(snapshot.nodes)
        self._snapshot = snapshot
        self._version = max(self._version, snapshot.version)
        self.ledger.prune(snapshot)
        self.metrics.publish_nodes(
            snapshot.names,
            snapshot.pred_cpu,
            snapshot.pred_mem,
            snapshot.anomaly_score,
            snapshot.anomaly_flag,
        )

    async def refresh(self, rows: NodeRows) -> Snapshot:
        """Build and install a snapshot from feature rows: one batched call per model
        (load and anomaly concurrently); a failed model leaves its outputs NaN."""
        async with self._refresh_lock:
            start = time.perf_counter()
            n = len(rows.names)
            pred_cpu, pred_mem = np.full(n, np.nan), np.full(n, np.nan)
            score, flag = np.full(n, np.nan), np.zeros(n, dtype=bool)
            calls: dict[str, Any] = {}
            if self.load_client is not None and n:
                calls["load"] = self.load_client.infer(rows.values, rows.columns)
            if self.anomaly_client is not None and n:
                calls["anomaly"] = self.anomaly_client.infer(rows.values, rows.columns)
            results = await asyncio.gather(*calls.values(), return_exceptions=True)
            degraded = []
            for kind, res in zip(calls, results, strict=True):
                if isinstance(res, BaseException):
                    degraded.append(kind)
                    self._fallback(f"refresh_{kind}_failed", f"{res}")
                    continue
                try:
                    if kind == "load":
                        pred_cpu, pred_mem = res["cpu_util_pred"], res["mem_util_pred"]
                    else:
                        score = res["anomaly_score"]
                        flag = res.get("anomaly_flag", np.zeros(n)) > 0.5
                except KeyError as exc:
                    degraded.append(kind)
                    self._fallback(f"refresh_{kind}_failed", f"missing output {exc}")
            self._version += 1
            snap = Snapshot(
                time=float(rows.time),
                received_at=self.clock(),
                names=list(rows.names),
                index={name: i for i, name in enumerate(rows.names)},
                sample_time=np.asarray(rows.sample_time, dtype=np.float64),
                nodes=node_arrays(rows, self.config.max_pods),
                pred_cpu=np.asarray(pred_cpu, dtype=np.float64),
                pred_mem=np.asarray(pred_mem, dtype=np.float64),
                anomaly_score=np.asarray(score, dtype=np.float64),
                anomaly_flag=np.asarray(flag, dtype=bool),
                degraded=tuple(degraded),
                version=self._version,
            )
            self.install(snap)
            await self.ab.refresh(snap, rows)
            self._score_live(rows, snap)
            # the snapshot lives until the next refresh: keep it out of the collector's
            # scans, so no request pays a full collection of it (p99 spikes)
            gc.collect(1)
            gc.freeze()
            self.metrics.refresh_seconds.observe(time.perf_counter() - start)
            self.metrics.refreshes.labels("degraded" if degraded else "ok").inc()
            return snap

    def _score_live(self, rows: NodeRows, snap: Snapshot) -> None:
        """Match earlier forecasts with these rows' observed utilisation and this
        refresh's forecasts for later (live accuracy; once per refresh, never per pod)."""
        observed = {r: rows.column(col) for r, col in RESOURCES.items()}
        forecast = {"cpu": snap.pred_cpu, "memory": snap.pred_mem}
        self.metrics.publish_live(self.live.observe(snap.time, snap.names, observed, forecast))

    # ------------------------------------------------------------------ decisions

    def _fallback(self, reason: str, detail: str = "") -> None:
        self.metrics.fallbacks.labels(reason).inc()
        now = time.monotonic()
        if now - self._last_log.get(reason, -np.inf) >= _LOG_EVERY_S:
            self._last_log[reason] = now
            log.warning("fallback %s%s", reason, f": {detail}" if detail else "")

    def _path(self, args: ExtenderArgs) -> str:
        """``active``, ``shadow`` or ``rollout_skip`` for this pod."""
        if rollout_bucket(args.pod.uid) >= self.config.rollout_percent:
            return "rollout_skip"
        return "shadow" if self.config.mode == "shadow" else "active"

    def _usable(self) -> Snapshot | None:
        snap = self._snapshot
        if snap is None:
            self._fallback("no_state")
            return None
        age = self.clock() - snap.received_at
        self.metrics.state_age.set(age)
        if age > self.config.stale_after_s:
            self._fallback("stale_state", f"state is {age:.1f}s old")
            return None
        return snap

    def _candidates(self, snap: Snapshot, args: ExtenderArgs):
        """Snapshot positions of the candidates, their arrays (with the ledger's recent
        placements and any allocatable the request carried), and projected load."""
        idx = snap.lookup(args.node_names)
        known = idx >= 0
        hits = int(known.sum())
        self.metrics.cache_lookups.labels("hit").inc(hits)
        if hits < idx.size:
            self.metrics.cache_lookups.labels("miss").inc(idx.size - hits)
            self._fallback("unknown_node", f"{idx.size - hits} candidate(s) not in the state")
        rc, rm, cnt = self.ledger.sums(snap)
        safe = np.where(known, idx, 0)
        nodes = replace(snap.nodes.take(safe), recent_cpu=rc[safe], recent_count=cnt[safe])
        if args.allocatable:
            for j, name in enumerate(args.node_names):
                a = args.allocatable.get(name)
                if a is not None:
                    for arr, v in zip(
                        (nodes.alloc_cpu, nodes.alloc_mem, nodes.max_pods), a, strict=True
                    ):
                        if np.isfinite(v):
                            arr[j] = v
        pod = args.pod
        with np.errstate(invalid="ignore", divide="ignore"):
            cpu_after = snap.pred_cpu[safe] + (rc[safe] + pod.cpu_m) / nodes.cap_cpu
            mem_after = snap.pred_mem[safe] + (rm[safe] + pod.mem_bytes) / nodes.cap_mem
        cpu_after = np.where(known & (nodes.cap_cpu > 0), cpu_after, np.nan)
        mem_after = np.where(known & (nodes.cap_mem > 0), mem_after, np.nan)
        return idx, known, nodes, cpu_after, mem_after

    def _filter(self, args: ExtenderArgs) -> dict[str, Any]:
        n = len(args.node_names)
        snap = self._usable()
        path = self._path(args)
        self.metrics.decisions.labels("filter", path).inc()
        if snap is None or path == "rollout_skip" or n == 0:
            return _keep_all(args)
        snap = self.ab.view(args.pod.uid, snap, "filter")
        c = self.config
        idx, known, nodes, cpu_after, mem_after = self._candidates(snap, args)
        safe = np.where(known, idx, 0)
        score = np.where(known, snap.anomaly_score[safe], np.nan)
        flag = known & snap.anomaly_flag[safe]
        reasons = filter_reasons(
            cpu_after,
            mem_after,
            score,
            flag,
            hot=c.hot_threshold,
            mem_hot=c.mem_hot_threshold,
            filter_hot=c.filter_hot,
            filter_anomalous=c.filter_anomalous,
            soft_target=c.target if c.filter_above_target else None,
        )
        failed = {args.node_names[i]: r for i, r in enumerate(reasons) if r is not None}
        if failed and len(failed) == n:
            anomalous = sum("anomal" in r for r in failed.values())
            hot_only = {k: r for k, r in failed.items() if "anomal" not in r}
            if len(hot_only) < n:
                # an anomaly flag alone never leaves a pod nowhere to go: the flagged nodes
                # that are not predicted hot come back, the hot filter still holds
                self._fallback(
                    "filter_relaxed_anomalous",
                    f"pod {args.pod.namespace}/{args.pod.name}: {anomalous} anomalous "
                    f"node(s) let back in, {len(hot_only)} predicted hot still filtered",
                )
                failed = hot_only
            else:
                self._fallback(
                    "filter_would_empty",
                    f"pod {args.pod.namespace}/{args.pod.name}: all {n} candidates "
                    f"predicted hot, e.g. {next(iter(failed.values()))}",
                )
                failed = {}
        for r in failed.values():
            self.metrics.filtered.labels("anomalous" if "anomal" in r else "hot").inc()
        keep = [True] * n if path == "shadow" else [nm not in failed for nm in args.node_names]
        self._prefetch_agent(args, snap, nodes, known, keep)
        if path == "shadow":
            log.info(
                "shadow filter pod=%s/%s would fail %d of %d nodes",
                args.pod.namespace,
                args.pod.name,
                len(failed),
                n,
            )
            return _keep_all(args)
        return filter_result(args, keep, failed)

    async def _prioritize(self, args: ExtenderArgs) -> list[dict[str, Any]]:
        n = len(args.node_names)
        snap = self._usable()
        path = self._path(args)
        self.metrics.decisions.labels("prioritize", path).inc()
        if snap is None or path == "rollout_skip" or n == 0:
            return _neutral(args)
        snap = self.ab.view(args.pod.uid, snap, "prioritize")
        c = self.config
        idx, known, nodes, cpu_after, mem_after = self._candidates(snap, args)
        load = load_part(
            cpu_after,
            mem_after,
            target=c.target,
            hot=c.hot_threshold,
            mem_hot=c.mem_hot_threshold,
            curve=c.load_curve,
        )
        if c.normalise_load:
            load = stretch(load)
        safe = np.where(known, idx, 0)
        anomaly = np.where(known, 1.0 - snap.anomaly_score[safe], NEUTRAL)
        anomaly = np.where(np.isnan(anomaly), NEUTRAL, anomaly)
        q = await self._agent_q_for(args, snap, nodes, known)
        scores = combine(
            load, agent_part(q, n), anomaly, (c.weights.load, c.weights.agent, c.weights.anomaly)
        )
        best = int(np.argmax(scores + 1e-3 * load))  # ties: the better load part
        if path == "shadow":
            log.info(
                "shadow prioritize pod=%s/%s best=%s score=%d",
                args.pod.namespace,
                args.pod.name,
                args.node_names[best],
                int(scores[best]),
            )
            return _neutral(args)
        if known[best] and c.lag_compensation:
            self.ledger.record(
                args.pod.uid, args.node_names[best], self.now(), args.pod.cpu_m, args.pod.mem_bytes
            )
        return priority_list(args.node_names, scores.tolist())

    def _prefetch_agent(
        self, args: ExtenderArgs, snap: Snapshot, nodes, known: np.ndarray, keep: list[bool]
    ) -> None:
        """Start the agent call for the nodes this filter answer keeps.

        kube-scheduler sends prioritize the nodes that survived filtering, and runs its
        own score plugins while the extender's prioritize is in flight; starting the
        agent's call at filter time overlaps it with all of that. Prioritize uses the
        result only for the same pod, node list and snapshot.
        """
        if self.ab.agent_for(args.pod.uid, self.agent_client) is None:
            return
        sel = np.flatnonzero(keep)
        names = tuple(args.node_names[i] for i in sel)
        task = asyncio.ensure_future(self._agent_q(args, nodes.take(sel), known[sel]))
        old = self._prefetched.pop(args.pod.uid, None)
        if old is not None:
            old[2].cancel()
        self._prefetched[args.pod.uid] = (names, snap.version, task)
        while len(self._prefetched) > _MAX_PREFETCHED:
            _, (_, _, stale) = self._prefetched.popitem(last=False)
            stale.cancel()

    async def _agent_q_for(
        self, args: ExtenderArgs, snap: Snapshot, nodes, known: np.ndarray
    ) -> np.ndarray | None:
        """The agent's Q for the prioritize candidates: the filter's prefetched call when
        it matches, else a call now."""
        entry = self._prefetched.pop(args.pod.uid, None)
        if entry is not None:
            names, version, task = entry
            if version == snap.version and names == tuple(args.node_names):
                self.metrics.prefetch.labels("used").inc()
                return await task
            task.cancel()
            self.metrics.prefetch.labels("stale").inc()
        return await self._agent_q(args, nodes, known)

    async def _agent_q(self, args: ExtenderArgs, nodes, known: np.ndarray) -> np.ndarray | None:
        client = self.ab.agent_for(args.pod.uid, self.agent_client)
        if client is None or not known.any():
            return None
        x = placement_features(args.pod.cpu_m, args.pod.mem_bytes, nodes.take(known), self._cluster)
        try:
            out = await client.infer(x, FEATURES)
            q_known = out["q_values"]
        except (ModelCallError, KeyError) as exc:
            self._fallback("agent_failed", str(exc))
            return None
        q = np.full(known.size, np.nan)
        q[known] = q_known
        return q

    # ------------------------------------------------------------------ entry points

    async def _bounded(self, verb: str, work, neutral):
        start = time.perf_counter()
        try:
            return await asyncio.wait_for(work, self.config.deadline_s)
        except TimeoutError:
            self._fallback("deadline", f"{verb} took longer than {self.config.deadline_s}s")
            return neutral()
        finally:
            self.metrics.decision_seconds.labels(verb).observe(time.perf_counter() - start)

    async def filter(self, body: Any) -> dict[str, Any]:
        """Answer a filter request (``body`` is the decoded JSON).

        Raises:
            BadRequestError: the body is not valid ``ExtenderArgs``.
        """
        args = parse_args(body)

        async def work() -> dict[str, Any]:
            return self._filter(args)

        return await self._bounded("filter", work(), lambda: _keep_all(args))

    async def prioritize(self, body: Any) -> list[dict[str, Any]]:
        """Answer a prioritize request.

        Raises:
            BadRequestError: the body is not valid ``ExtenderArgs``.
        """
        args = parse_args(body)
        return await self._bounded(
            "prioritize",
            self._prioritize(args),
            lambda: _neutral(args),
        )
