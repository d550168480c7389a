"""Streaming importers for the public traces: each reads its files by name pattern or an
explicit path and raises :class:`~hydatis.errors.DataSourceError` naming the file, line
and column on bad input.

- :mod:`~simulator.importers.openb`: Alibaba OpenB node and pod lists (requests, QoS,
  lifecycles; GPUs ignored).
- :mod:`~simulator.importers.bitbrains`: Bitbrains VM files → per-VM use/provisioned
  series on a 300 s grid.
- :mod:`~simulator.importers.alibaba_v2018`: Alibaba v2018 machine usage and meta →
  node_metrics and nodes.
- :mod:`~simulator.importers.aggregates`: cluster-mean series → diurnal profiles.
"""

from simulator.importers.aggregates import diurnal_profile, read_aggregate
from simulator.importers.alibaba_v2018 import (
    load_alibaba_v2018,
    read_machine_meta,
    read_machine_usage,
)
from simulator.importers.bitbrains import (
    VMSeries,
    iter_bitbrains,
    load_bitbrains,
    read_bitbrains_vm,
)
from simulator.importers.openb import load_openb, read_openb_nodes, read_openb_pods

__all__ = [
    "VMSeries",
    "diurnal_profile",
    "iter_bitbrains",
    "load_alibaba_v2018",
    "load_bitbrains",
    "load_openb",
    "read_aggregate",
    "read_bitbrains_vm",
    "read_machine_meta",
    "read_machine_usage",
    "read_openb_nodes",
    "read_openb_pods",
]
