"""``hydatis validate``: the manifests' offline checks, the extender answer checks, and
the live steps at the HTTP boundary — a loopback server plays the Kubernetes API and
records every request the ``kubernetes`` client sends; loopback extenders answer in
known broken ways (the real extender answers in tests/integration/test_validate_live.py)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hydatis.errors import ConfigError
from operations import _validate_extender as ext
from operations.manifests import (
    ManifestError,
    check_manifests,
    extender_config,
    overlays,
    render,
)
from operations.validate import connect, list_nodes, validate_deployment
from tests.kube_api import ApiRecorder, Routes, Seen, serving

# --------------------------------------------------------------------------- helpers


Recorder = ApiRecorder  # the name tests/integration/test_validate_live.py imports


@pytest.fixture
def recorder() -> Iterator[Callable[[Routes], ApiRecorder]]:
    with serving() as start:
        yield start


def node_obj(name: str, *, ready: bool = True, cordoned: bool = False, cpu: str = "8") -> dict:
    """A v1.Node as the API server lists it."""
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"unschedulable": True} if cordoned else {},
        "status": {
            "allocatable": {"cpu": cpu, "memory": "32Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def node_list(items: list[dict], token: str = "") -> tuple[int, dict]:
    meta = {"resourceVersion": "1", **({"continue": token} if token else {})}
    return 200, {"kind": "NodeList", "apiVersion": "v1", "metadata": meta, "items": items}


@pytest.fixture(scope="module")
def dev_docs() -> list[dict]:
    return render("dev")


# --------------------------------------------------------------------------- manifests


@pytest.mark.parametrize("overlay", overlays())
def test_every_overlay_renders_and_passes_the_checks(overlay):
    docs = render(overlay)
    assert [str(p) for p in check_manifests(docs)] == []
    cfg = extender_config(docs)
    assert cfg.filter_verb and cfg.prioritize_verb and cfg.scheduler_name == "ml-scheduler"


def test_unknown_overlay_names_the_ones_there_are():
    with pytest.raises(ManifestError) as err:
        render("qa")
    assert "no overlay 'qa'" in str(err.value)
    for name in overlays():
        assert name in str(err.value)


def _docs_with(docs: list[dict], kind: str, name: str, change: Callable[[dict], None]) -> list:
    out = copy.deepcopy(docs)
    (doc,) = [d for d in out if d["kind"] == kind and d["metadata"]["name"] == name]
    change(doc)
    return out


def _ksc_change(change: Callable[[dict], None]) -> Callable[[dict], None]:
    def apply(cm: dict) -> None:
        ksc = yaml.safe_load(cm["data"]["config.yaml"])
        change(ksc)
        cm["data"]["config.yaml"] = yaml.safe_dump(ksc)

    return apply


def _shim_change(key: str, value: Any) -> Callable[[dict], None]:
    def apply(cm: dict) -> None:
        shim = yaml.safe_load(cm["data"]["shim.yaml"])
        shim[key] = value
        cm["data"]["shim.yaml"] = yaml.safe_dump(shim)

    return apply


def _writable_root(dep: dict) -> None:
    c = dep["spec"]["template"]["spec"]["containers"][0]
    c["securityContext"]["readOnlyRootFilesystem"] = False


def _writable_config_mount(dep: dict) -> None:
    pod = dep["spec"]["template"]["spec"]
    pod.setdefault("volumes", []).append({"name": "cfg-rw", "configMap": {"name": "x"}})
    pod["containers"][0].setdefault("volumeMounts", []).append(
        {"name": "cfg-rw", "mountPath": "/etc/rw"}
    )


def _predictor_adds_capability(isvc: dict) -> None:
    c = isvc["spec"]["predictor"]["containers"][0]
    c["securityContext"]["capabilities"]["add"] = ["NET_ADMIN"]


@pytest.mark.parametrize(
    ("kind", "name", "change", "expected"),
    [
        ("Deployment", "hydatis-shim", _writable_root, "root filesystem writable"),
        (
            "Service",
            "hydatis-shim",
            lambda d: d["spec"].update(portz=[]),
            "'portz' was unexpected",
        ),
        (
            "ServiceAccount",
            "hydatis-shim",
            lambda d: d["metadata"].update(namespace="default"),
            "namespace 'default', not hydatis-system",
        ),
        (
            "ConfigMap",
            "ml-scheduler-config",
            _ksc_change(lambda k: k["extenders"][0].update(httpTimeout="100ms")),
            "httpTimeout 0.1 s must exceed the extender's deadline_s",
        ),
        (
            "ConfigMap",
            "ml-scheduler-config",
            _ksc_change(lambda k: k["extenders"][0].update(httpTimeout="500")),
            "not a Go duration: '500'",
        ),
        (
            "ConfigMap",
            "ml-scheduler-config",
            _ksc_change(
                lambda k: k["extenders"][0].update(urlPrefix="http://nope.hydatis-system.svc:1")
            ),
            "urlPrefix names Service 'nope', not rendered",
        ),
        (
            "ConfigMap",
            "hydatis-shim-config",
            _shim_change("deadline", 0.2),
            "deadline: Extra inputs are not permitted",
        ),
        ("Deployment", "hydatis-shim", _writable_config_mount, "not readOnly"),
        (
            "InferenceService",
            "hydatis-load-predictor",
            lambda d: d["spec"]["predictor"].update(minReplicas=1),
            "minReplicas 1 (need >= 2",
        ),
        (
            "InferenceService",
            "hydatis-anomaly-detector",
            _predictor_adds_capability,
            "adds capabilities ['NET_ADMIN']",
        ),
    ],
    ids=[
        "writable-root",
        "unknown-field",
        "wrong-namespace",
        "timeout-below-deadline",
        "timeout-without-unit",
        "url-to-no-service",
        "shim-unknown-key",
        "writable-config-mount",
        "isvc-one-replica",
        "predictor-adds-capability",
    ],
)
def test_manifest_check_catches(dev_docs, kind, name, change, expected):
    problems = [str(p) for p in check_manifests(_docs_with(dev_docs, kind, name, change))]
    assert any(expected in p for p in problems), problems


# --------------------------------------------------------------------------- answers

SENT = ["a", "b", "c"]


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"NodeNames": ["a"], "FailedNodes": {"b": "hot"}}, "neither kept nor failed: c"),
        ({"NodeNames": ["a", "b", "c", "x"], "FailedNodes": {}}, "never sent: x"),
        ({"NodeNames": ["a", "b", "c"], "FailedNodes": {"a": "hot"}}, "kept and failed"),
        ({"NodeNames": SENT, "FailedNodes": {}, "Error": "boom"}, "Error 'boom'"),
        ([], "not an object"),
    ],
    ids=["lost-node", "invented-node", "kept-and-failed", "error-set", "not-an-object"],
)
def test_filter_answer_problems(answer, problem):
    _, _, problems = ext.check_filter(SENT, answer, node_cache_capable=True)
    assert any(problem in p for p in problems), problems


def test_filter_answer_with_node_objects_and_lowercase_fields():
    answer = {
        "nodes": {"items": [node_obj("a"), node_obj("c")]},
        "failedNodes": {"b": "predicted hot"},
        "failedAndUnresolvableNodes": {},
        "error": "",
    }
    kept, failed, problems = ext.check_filter(SENT, answer, node_cache_capable=False)
    assert (kept, failed, problems) == (["a", "c"], {"b": "predicted hot"}, [])


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ([{"Host": "a", "Score": 11}, {"Host": "b", "Score": 0}], "outside 0..10"),
        ([{"Host": "a", "Score": "5"}, {"Host": "b", "Score": 5}], "not an integer"),
        ([{"Host": "a", "Score": True}, {"Host": "b", "Score": 5}], "not an integer"),
        ([{"Host": "a", "Score": 5}], "without a score: b"),
        ([{"Host": "a", "Score": 5}, {"Host": "a", "Score": 5}], "a scored twice"),
        ([{"Host": "a", "Score": 5}, {"Host": "b", "Score": 1}, {"Host": "z", "Score": 1}], "z"),
    ],
    ids=["above-ten", "string-score", "bool-score", "missing-host", "twice", "invented-host"],
)
def test_prioritize_answer_problems(answer, problem):
    _, problems = ext.check_prioritize(["a", "b"], answer)
    assert any(problem in p for p in problems), problems


def test_prioritize_answer_ok():
    scores, problems = ext.check_prioritize(
        ["a", "b"], [{"host": "a", "score": 0}, {"Host": "b", "Score": 10}]
    )
    assert (scores, problems) == ({"a": 0, "b": 10}, [])


def test_cordoned_and_not_ready_nodes_are_left_out():
    nodes = [node_obj("a"), node_obj("b", cordoned=True), node_obj("c", ready=False)]
    usable, left = ext.schedulable_nodes(nodes)
    assert [n["metadata"]["name"] for n in usable] == ["a"]
    assert left == {"b": "cordoned", "c": "not Ready"}


# --------------------------------------------------------------------------- the API


def test_nodes_are_listed_page_by_page(recorder):
    pages = {"": node_list([node_obj("n1")], token="tok-2"), "tok-2": node_list([node_obj("n2")])}
    api = recorder({("GET", "/api/v1/nodes"): lambda s: pages[s.query.get("continue", [""])[0]]})
    client = connect(kube_api=api.url)
    nodes = list_nodes(client)
    assert [n["metadata"]["name"] for n in nodes] == ["n1", "n2"]
    assert [(s.method, s.path, s.query) for s in api.seen] == [
        ("GET", "/api/v1/nodes", {"limit": ["500"]}),
        ("GET", "/api/v1/nodes", {"limit": ["500"], "continue": ["tok-2"]}),
    ]


def test_kubeconfig_file_is_used_with_its_token(recorder, tmp_path):
    api = recorder({("GET", "/api/v1/nodes"): node_list([node_obj("n1")])})
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": api.url}}],
                "users": [{"name": "u", "user": {"token": "t0ken"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    list_nodes(connect(kubeconfig=kubeconfig))
    (seen,) = api.seen
    assert seen.headers["authorization"] == "Bearer t0ken"


def test_missing_kubeconfig_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        connect(kubeconfig=tmp_path / "nope")


def test_api_error_fails_the_nodes_step_with_the_status(recorder):
    api = recorder({("GET", "/api/v1/nodes"): (403, {"kind": "Status", "code": 403})})
    report = validate_deployment(
        "dev", api_client=connect(kube_api=api.url), extender_url="http://127.0.0.1:1"
    )
    nodes = next(s for s in report.steps if s.name == "nodes")
    assert nodes.ok is False and "HTTP 403" in nodes.problems[0]
    assert not report.ok


def _late_but_right(seen: Seen) -> tuple[int, Any]:
    """A correct filter answer sent after the dev overlay's 500 ms httpTimeout."""
    time.sleep(0.7)
    return 200, {"NodeNames": seen.body["NodeNames"], "FailedNodes": {}}


@pytest.mark.parametrize(
    ("filter_answer", "problem"),
    [
        (
            lambda s: (200, {"NodeNames": s.body["NodeNames"][:1], "FailedNodes": {}}),
            "neither kept nor failed: n2",
        ),
        (lambda s: (500, {"error": "boom"}), "HTTP 500 from"),
        (_late_but_right, "past kube-scheduler's httpTimeout 0.5 s"),
    ],
    ids=["drops-a-node", "server-error", "slower-than-http-timeout"],
)
def test_broken_extender_fails_the_filter_step(recorder, filter_answer, problem):
    api = recorder({("GET", "/api/v1/nodes"): node_list([node_obj("n1"), node_obj("n2")])})
    bad = recorder({("POST", "/filter"): filter_answer})
    report = validate_deployment("dev", api_client=connect(kube_api=api.url), extender_url=bad.url)
    step = next(s for s in report.steps if s.name == "filter")
    assert step.ok is False and any(problem in p for p in step.problems), step
    assert not report.ok
    assert [s.path for s in bad.seen] == ["/filter"]  # prioritize is not sent


def test_offline_validation_runs_no_live_step(tmp_path):
    report = validate_deployment("dev")
    assert [(s.name, s.ok) for s in report.steps] == [
        ("render", True),
        ("manifests", True),
        ("nodes", None),
    ]
    assert report.ok


def test_command_offline_json(capsys):
    from cli.main import main

    assert main(["validate", "--overlay", "dev", "--offline", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["overlay"] == "dev"


def test_command_unknown_overlay_fails(capsys):
    from cli.main import main

    assert main(["validate", "--overlay", "qa", "--offline"]) == 1
    assert "no overlay 'qa'" in capsys.readouterr().out


def test_render_with_a_folder(tmp_path):
    docs = render(Path(__file__).resolve().parents[2] / "infra" / "overlays" / "dev")
    assert any(d["kind"] == "Deployment" for d in docs)
