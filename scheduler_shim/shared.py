"""Sharing the node-state snapshot between extender replicas through Redis (optional).

Without it every replica refreshes on its own (in-process cache, the default). With it,
a refresh publishes the snapshot under one key; the other replicas poll the key's version
and install a newer snapshot instead of calling the models themselves, and a short lock
lets only one replica refresh a pulled source per interval. The blob is an ``.npz`` of
the arrays plus a JSON header — no pickle, so a replica never unpickles what another
wrote.
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass, fields

import numpy as np
import redis

from hydatis.models.placement_features import NodeArrays
from scheduler_shim.state import Snapshot

__all__ = ["RedisShare", "decode_snapshot", "encode_snapshot"]

log = logging.getLogger(__name__)

_ARRAYS = ("sample_time", "pred_cpu", "pred_mem", "anomaly_score", "anomaly_flag")


def encode_snapshot(snap: Snapshot) -> bytes:
    """Serialise a snapshot (header length, JSON header, npz arrays)."""
    header = json.dumps(
        {
            "time": snap.time,
            "names": snap.names,
            "degraded": list(snap.degraded),
            "version": snap.version,
            "refreshed_wall": time.time() - (time.monotonic() - snap.received_at),
        }
    ).encode()
    arrays = {k: getattr(snap, k) for k in _ARRAYS}
    arrays.update({f"nodes.{f.name}": getattr(snap.nodes, f.name) for f in fields(NodeArrays)})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return len(header).to_bytes(8, "big") + header + buf.getvalue()


def decode_snapshot(blob: bytes) -> Snapshot:
    """The snapshot :func:`encode_snapshot` wrote, as old as it was when written plus the
    time since (wall clocks of replicas are assumed in sync)."""
    size = int.from_bytes(blob[:8], "big")
    header = json.loads(blob[8 : 8 + size])
    with np.load(io.BytesIO(blob[8 + size :]), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    nodes = NodeArrays(**{f.name: arrays[f"nodes.{f.name}"] for f in fields(NodeArrays)})
    names = list(header["names"])
    return Snapshot(
        time=float(header["time"]),
        received_at=time.monotonic() - max(0.0, time.time() - header["refreshed_wall"]),
        names=names,
        index={n: i for i, n in enumerate(names)},
        nodes=nodes,
        degraded=tuple(header["degraded"]),
        version=int(header["version"]),
        **{k: arrays[k] for k in _ARRAYS},
    )


@dataclass
class RedisShare:
    """One Redis key holding the latest snapshot, another its version, and a lock.

    Args:
        url: the Redis URL.
        key: key prefix (one per extender deployment).
        timeout_s: socket timeout — Redis being slow must not stall decisions.
    """

    url: str
    key: str = "hydatis:shim:state"
    timeout_s: float = 0.5

    def __post_init__(self) -> None:
        self._redis = redis.Redis.from_url(
            self.url, socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s
        )

    def publish(self, snap: Snapshot) -> None:
        """Store ``snap`` as the shared state (version first read by pollers)."""
        pipe = self._redis.pipeline()
        pipe.set(f"{self.key}:blob", encode_snapshot(snap))
        pipe.set(f"{self.key}:version", snap.version)
        pipe.execute()

    def version(self) -> int:
        """The shared snapshot's version (0 when there is none)."""
        v = self._redis.get(f"{self.key}:version")
        return int(v) if v is not None else 0

    def fetch(self, newer_than: int) -> Snapshot | None:
        """The shared snapshot if its version is above ``newer_than``."""
        if self.version() <= newer_than:
            return None
        blob = self._redis.get(f"{self.key}:blob")
        return None if blob is None else decode_snapshot(blob)

    def try_lock(self, owner: str, ttl_s: float) -> bool:
        """Take the refresh lock for ``ttl_s`` (True if this replica holds it)."""
        key = f"{self.key}:lock"
        if self._redis.set(key, owner, nx=True, px=int(ttl_s * 1000)):
            return True
        held = self._redis.get(key)
        return held is not None and held.decode() == owner

    def close(self) -> None:
        """Close the connection pool."""
        self._redis.close()
