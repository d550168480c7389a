"""The extender's wire format: kube-scheduler's extender v1 JSON, exactly."""

from __future__ import annotations

import pytest

from scheduler_shim.protocol import (
    DEFAULT_CPU_REQUEST_M,
    DEFAULT_MEM_REQUEST_BYTES,
    BadRequestError,
    filter_result,
    parse_args,
    parse_quantity,
    priority_list,
)


def pod(*containers, init=(), overhead=None, uid="uid-1"):
    spec = {
        "containers": [
            {"name": f"c{i}", "resources": {"requests": r}} for i, r in enumerate(containers)
        ]
    }
    if init:
        spec["initContainers"] = [{"name": "i", "resources": {"requests": r}} for r in init]
    if overhead:
        spec["overhead"] = overhead
    return {"metadata": {"name": "web-1", "namespace": "shop", "uid": uid}, "spec": spec}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("250m", 0.25),
        ("1", 1.0),
        ("1.5", 1.5),
        (".5", 0.5),
        ("128Mi", 128 * 2**20),
        ("1Gi", 2**30),
        ("1e3", 1000.0),
        ("1k", 1000.0),
        ("500M", 5e8),
        ("100n", 1e-7),
        (2, 2.0),
        (0.5, 0.5),
    ],
    ids=[
        "milli",
        "int-string",
        "decimal",
        "leading-dot",
        "Mi",
        "Gi",
        "exponent",
        "k",
        "M",
        "nano",
        "json-int",
        "json-float",
    ],
)
def test_parse_quantity(value, expected):
    assert parse_quantity(value, "x") == pytest.approx(expected)


@pytest.mark.parametrize(
    "value",
    ["abc", "1.5.3", "-1", "1Xi", "", True, None, [1]],
    ids=["word", "two-dots", "negative", "bad-suffix", "empty", "bool", "null", "list"],
)
def test_parse_quantity_rejects(value):
    with pytest.raises(BadRequestError, match="where"):
        parse_quantity(value, "where")


def test_node_names_mode_go_field_names():
    args = parse_args(
        {"Pod": pod({"cpu": "500m", "memory": "1Gi"}), "Nodes": None, "NodeNames": ["a", "b"]}
    )
    assert args.node_names == ["a", "b"]
    assert args.node_objects is None
    assert args.pod.cpu_m == pytest.approx(500.0)
    assert args.pod.mem_bytes == pytest.approx(2**30)
    assert (args.pod.uid, args.pod.name, args.pod.namespace) == ("uid-1", "web-1", "shop")


@pytest.mark.parametrize(
    "keys",
    [("pod", "nodenames"), ("POD", "NODENAMES"), ("Pod", "nodeNames")],
    ids=["lower", "upper", "mixed"],
)
def test_field_names_any_case(keys):
    p = {
        "METADATA": {"Name": "x", "UID": "u"},
        "Spec": {"Containers": [{"Resources": {"Requests": {"CPU": "1"}}}]},
    }
    args = parse_args({keys[0]: p, keys[1]: ["n1"]})
    assert args.node_names == ["n1"]
    assert args.pod.cpu_m == pytest.approx(1000.0)
    assert args.pod.uid == "u"


def test_node_objects_mode_reads_allocatable():
    node = {
        "metadata": {"name": "n1", "labels": {"zone": "a"}},
        "status": {
            "allocatable": {"cpu": "3920m", "memory": "16Gi", "pods": "110"},
            "capacity": {"cpu": "4"},
        },
    }
    args = parse_args({"Pod": pod({"cpu": "1"}), "Nodes": {"items": [node]}, "NodeNames": None})
    assert args.node_names == ["n1"]
    assert args.node_objects == [node]
    assert args.allocatable["n1"] == pytest.approx((3920.0, 16 * 2**30, 110.0))


@pytest.mark.parametrize(
    ("containers", "init", "overhead", "cpu", "mem"),
    [
        (
            [{"cpu": "1", "memory": "1Gi"}, {"cpu": "500m", "memory": "512Mi"}],
            (),
            None,
            1500.0,
            1.5 * 2**30,
        ),
        ([{"cpu": "1"}], ({"cpu": "2", "memory": "1Mi"},), None, 2000.0, DEFAULT_MEM_REQUEST_BYTES),
        (
            [{"cpu": "1", "memory": "1Gi"}],
            (),
            {"cpu": "250m", "memory": "64Mi"},
            1250.0,
            2**30 + 64 * 2**20,
        ),
        ([{}], (), None, DEFAULT_CPU_REQUEST_M, DEFAULT_MEM_REQUEST_BYTES),
    ],
    ids=["sum-of-containers", "init-container-larger", "overhead", "no-requests-defaults"],
)
def test_effective_requests(containers, init, overhead, cpu, mem):
    args = parse_args({"Pod": pod(*containers, init=init, overhead=overhead), "NodeNames": []})
    assert args.pod.cpu_m == pytest.approx(cpu)
    assert args.pod.mem_bytes == pytest.approx(mem)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ([], "body"),
        ({"NodeNames": ["a"]}, "Pod"),
        ({"Pod": "x", "NodeNames": ["a"]}, "Pod"),
        ({"Pod": pod({"cpu": "1"}), "NodeNames": "a"}, "NodeNames"),
        ({"Pod": pod({"cpu": "1"}), "NodeNames": ["a", 3]}, "NodeNames[1]"),
        (
            {"Pod": pod({"cpu": "lots"}), "NodeNames": ["a"]},
            "Pod.spec.containers[0].resources.requests.cpu",
        ),
        (
            {"Pod": pod({"cpu": "1"}), "Nodes": {"items": [{"metadata": {}}]}},
            "Nodes.items[0].metadata.name",
        ),
        ({"Pod": pod({"cpu": "1"}), "Nodes": {"items": "x"}}, "Nodes.items"),
    ],
    ids=[
        "array-body",
        "no-pod",
        "pod-not-object",
        "names-not-array",
        "name-not-string",
        "bad-quantity",
        "node-without-name",
        "items-not-array",
    ],
)
def test_malformed_requests_name_the_field(body, where):
    with pytest.raises(BadRequestError) as err:
        parse_args(body)
    assert err.value.where == where


def test_filter_result_echoes_node_objects_when_sent():
    nodes = [{"metadata": {"name": n}} for n in ("a", "b", "c")]
    args = parse_args({"Pod": pod({"cpu": "1"}), "Nodes": {"items": nodes}})
    out = filter_result(args, [True, False, True], {"b": "hot"})
    assert out == {
        "Nodes": {"items": [nodes[0], nodes[2]]},
        "NodeNames": None,
        "FailedNodes": {"b": "hot"},
        "FailedAndUnresolvableNodes": {},
        "Error": "",
    }


def test_filter_result_names_mode():
    args = parse_args({"Pod": pod({"cpu": "1"}), "NodeNames": ["a", "b"]})
    out = filter_result(args, [False, True], {"a": "anomalous"})
    assert out["Nodes"] is None
    assert out["NodeNames"] == ["b"]
    assert out["FailedNodes"] == {"a": "anomalous"}


def test_priority_list_integer_scores():
    out = priority_list(["a", "b"], [7, 0])
    assert out == [{"Host": "a", "Score": 7}, {"Host": "b", "Score": 0}]
    assert all(type(h["Score"]) is int for h in out)
