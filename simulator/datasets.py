"""The default dataset: the real composite trace when the public traces are present,
else the embedded synthetic default."""

from __future__ import annotations

from hydatis.config import data_dir
from hydatis.dataset import ClusterDataset
from simulator.composite import build_composite
from simulator.synthetic import generate_synthetic

__all__ = ["SYNTHETIC_NODES", "default_dataset"]

SYNTHETIC_NODES = 500  # cluster size of the synthetic default when ``nodes`` is None


def default_dataset(
    *,
    nodes: int | None = None,
    load_factor: float = 1.0,
    usage_scale: float = 1.0,
    horizon_s: float = 86400,
    seed: int = 0,
    synthetic: bool = False,
    **trace_files: str,
) -> tuple[ClusterDataset, str]:
    """Return ``(dataset, description)``.

    With a data directory (:func:`hydatis.config.data_dir`) the dataset is the composite
    trace (:func:`simulator.composite.build_composite`, services mode; ``nodes=None``
    keeps all 1,523 OpenB nodes); without one it is the synthetic default
    (:func:`simulator.synthetic.generate_synthetic`, ``nodes=None`` → 500 nodes).
    ``synthetic=True`` picks the synthetic default even when the traces are there.
    ``trace_files`` (``pod_list``, ``node_list``, ``bitbrains_dir``) pick other files of
    the same sources for the composite trace (another OpenB pod-list mix, another
    Bitbrains month); the synthetic default has none.
    """
    base = None if synthetic else data_dir()
    if base is not None:
        ds = build_composite(
            base,
            nodes=nodes,
            load_factor=load_factor,
            usage_scale=usage_scale,
            horizon_s=horizon_s,
            seed=seed,
            **trace_files,
        )
        files = "".join(f", {k}={v}" for k, v in sorted(trace_files.items()))
        return ds, f"real composite trace (Alibaba OpenB + Bitbrains) from {base}{files}"
    ds = generate_synthetic(
        nodes=SYNTHETIC_NODES if nodes is None else nodes,
        load_factor=load_factor,
        usage_scale=usage_scale,
        horizon_s=horizon_s,
        seed=seed,
    )
    why = "chosen over the traces" if synthetic else "no data directory"
    return ds, f"embedded synthetic default ({why})"
