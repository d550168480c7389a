"""The score combination: each part's formula, and the filter's reasons."""

from __future__ import annotations

import numpy as np
import pytest

from scheduler_shim.scoring import (
    NEUTRAL,
    agent_part,
    combine,
    filter_reasons,
    load_curve_svg,
    load_part,
    stretch,
)


@pytest.mark.parametrize(
    ("cpu", "mem", "expected"),
    [
        (0.0, 0.0, 0.5),
        (0.325, 0.0, 0.75),
        (0.65, 0.0, 1.0),
        (0.75, 0.0, 0.5),
        (0.85, 0.0, 0.0),
        (1.3, 0.0, 0.0),
        (0.65, 0.90, 0.5),
        (0.65, 0.95, 0.0),
        (np.nan, 0.0, NEUTRAL),
        (0.65, np.nan, 1.0),
    ],
    ids=[
        "empty-node",
        "half-target",
        "at-target",
        "between",
        "at-hot",
        "overloaded",
        "memory-ramp",
        "memory-hot",
        "nan-cpu",
        "nan-mem",
    ],
)
def test_load_part_target_curve(cpu, mem, expected):
    got = load_part(
        np.array([cpu]), np.array([mem]), target=0.65, hot=0.85, mem_hot=0.95, curve="target"
    )
    assert got[0] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("cpu", "mem", "expected"),
    [
        (0.0, 0.0, 1.0),
        (0.425, 0.0, 0.5),
        (0.65, 0.0, 1 - 0.65 / 0.85),
        (0.85, 0.0, 0.0),
        (1.3, 0.0, 0.0),
        (-0.1, 0.0, 1.0),
        (0.425, 0.90, 0.25),
        (0.425, 0.95, 0.0),
        (np.nan, 0.0, NEUTRAL),
    ],
    ids=[
        "empty-node",
        "half-way-to-hot",
        "at-target",
        "at-hot",
        "overloaded",
        "negative-forecast",
        "memory-ramp",
        "memory-hot",
        "nan-cpu",
    ],
)
def test_load_part_headroom_curve(cpu, mem, expected):
    got = load_part(np.array([cpu]), np.array([mem]), target=0.65, hot=0.85, mem_hot=0.95)
    assert got[0] == pytest.approx(expected)


def test_load_part_rejects_an_unknown_curve():
    with pytest.raises(ValueError, match="headroom"):
        load_part(np.array([0.5]), np.array([0.5]), curve="peak")


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        ([0.2, 0.3, 0.4], [0.0, 0.5, 1.0]),
        ([0.3, 0.3], [0.3, 0.3]),
        ([0.2, np.nan, 0.4], [0.0, np.nan, 1.0]),
        ([np.nan, np.nan], [np.nan, np.nan]),
        ([], []),
    ],
    ids=["spread", "all-equal", "nan-kept", "all-nan", "no-candidates"],
)
def test_stretch(part, expected):
    np.testing.assert_allclose(stretch(np.array(part, dtype=float)), expected)


def test_soft_target_filters_warm_nodes_only_while_a_cool_one_remains():
    mem, score, flag = np.full(3, 0.5), np.zeros(3), np.zeros(3, bool)
    kw = {"hot": 0.85, "mem_hot": 0.95, "soft_target": 0.65}
    reasons = filter_reasons(np.array([0.5, 0.7, 0.9]), mem, score, flag, **kw)
    assert reasons[0] is None
    assert "target 0.65" in reasons[1] and "hot threshold 0.85" in reasons[2]
    # every node past the target: only the hot one fails, the warm ones stay
    reasons = filter_reasons(np.array([0.7, 0.75, 0.9]), mem, score, flag, **kw)
    assert reasons[:2] == [None, None] and "hot threshold" in reasons[2]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (None, [0.5, 0.5, 0.5]),
        ([1.0, 1.0, 1.0], [0.5, 0.5, 0.5]),
        ([1.0, 2.0, 3.0], [0.0, 0.5, 1.0]),
        ([1.0, np.nan, 3.0], [0.0, 0.5, 1.0]),
        ([np.nan, np.nan, np.nan], [0.5, 0.5, 0.5]),
    ],
    ids=["no-agent", "all-equal", "min-max", "nan-entry", "all-nan"],
)
def test_agent_part(q, expected):
    got = agent_part(None if q is None else np.array(q), 3)
    np.testing.assert_allclose(got, expected)


@pytest.mark.parametrize(
    ("parts", "weights", "expected"),
    [
        ((1.0, 1.0, 1.0), (0.3, 0.4, 0.3), 10),
        ((0.0, 0.0, 0.0), (0.3, 0.4, 0.3), 0),
        ((1.0, 0.0, 1.0), (0.3, 0.4, 0.3), 6),
        ((0.5, 0.5, 0.5), (0.3, 0.4, 0.3), 5),
        ((1.0, 0.0, 0.0), (1.0, 0.0, 0.0), 10),
        ((0.0, 1.0, 0.0), (3.0, 4.0, 3.0), 4),
    ],
    ids=["all-best", "all-worst", "agent-worst", "neutral", "load-only", "unnormalised"],
)
def test_combine(parts, weights, expected):
    load, agent, anomaly = (np.array([p]) for p in parts)
    got = combine(load, agent, anomaly, weights)
    assert got.dtype.kind == "i"
    assert int(got[0]) == expected


def test_filter_reasons():
    cpu = np.array([0.5, 0.9, 0.5, 0.5, np.nan])
    mem = np.array([0.5, 0.5, 0.97, 0.5, np.nan])
    score = np.array([0.1, 0.1, 0.1, 0.9, np.nan])
    flag = np.array([False, False, False, True, False])
    reasons = filter_reasons(cpu, mem, score, flag, hot=0.85, mem_hot=0.95)
    assert reasons[0] is None and reasons[4] is None
    assert "CPU" in reasons[1] and "0.90" in reasons[1]
    assert "memory" in reasons[2]
    assert "anomalous" in reasons[3] and "0.90" in reasons[3]
    off = filter_reasons(
        cpu, mem, score, flag, hot=0.85, mem_hot=0.95, filter_hot=False, filter_anomalous=False
    )
    assert off == [None] * 5


def test_load_curve_plot_is_svg():
    svg = load_curve_svg()
    assert svg.startswith("<svg") and "polyline" in svg and "hot 0.85" in svg
