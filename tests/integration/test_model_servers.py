"""The three model servers as real processes (serving/launch.py): v1 and v2 answers equal
the in-process models on a batch, named columns in any order, the binary tensor
extension, a ``models:/NAME@champion`` source from a real MLflow registry, and malformed
requests answered 4xx with a reason while the server keeps serving."""

from __future__ import annotations

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest

from components.register import core as reg
from hydatis.features import feature_names
from hydatis.models.anomaly_detector import AnomalyDetector
from hydatis.models.base import TrainResult
from hydatis.models.load_predictor import LoadPredictor
from hydatis.models.placement_agent import PlacementAgent
from hydatis.models.placement_features import FEATURES
from serving._registry import resolve_ref
from serving.errors import ServerStartError
from serving.launch import serve_models
from serving.manifests import inference_service
from tests.model_fixtures import feature_rows, fit_tiny_models

pytestmark = pytest.mark.integration

COLS = feature_names()
N = 40
NAMES = {
    "load": "hydatis-load-predictor",
    "anomaly": "hydatis-anomaly-detector",
    "placement": "hydatis-placement-agent",
}


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory, registry):
    """Tiny models on disk, the agent registered as champion, the three servers running."""
    tmp = tmp_path_factory.mktemp("servers")
    paths = fit_tiny_models(tmp / "models")
    agent = PlacementAgent.load(paths["agent"])
    outcome = reg.register(
        TrainResult(
            name="placement",
            model=agent,
            params={"hidden": [16]},
            metrics={"score": 1.0},
            table=pd.DataFrame({"model": ["agent"], "score": [1.0]}),
            targets=[],
            primary="score",
            higher_is_better=True,
            features=list(FEATURES),
            eval_data_id="tiny",
        ),
        uri=registry,
    )
    assert outcome.promoted
    sources = {
        "load": str(paths["load"]),
        "anomaly": str(paths["anomaly"]),
        "placement": f"models:/{NAMES['placement']}@champion",
    }
    models = {
        "load": LoadPredictor.load(paths["load"]),
        "anomaly": AnomalyDetector.load(paths["anomaly"]),
        "placement": agent,
    }
    with (
        serve_models(sources, tracking_uri=registry, log_dir=tmp / "logs", timeout_s=90) as s,
        httpx.Client(timeout=10.0) as client,
    ):
        yield {"servers": s, "models": models, "client": client, "outcome": outcome}


def batch(kind: str, seed: int = 3) -> np.ndarray:
    """A batch in the default column order (NaN in a few load/anomaly cells)."""
    if kind == "placement":
        return np.random.default_rng(seed).random((N, len(FEATURES)), dtype=np.float32)
    x = feature_rows(N, seed).astype(np.float32)
    x[1, COLS.index("cpu_mean_1h")] = np.nan
    return x


def expected(stack, kind: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """The in-process model's outputs for ``x`` (default column order)."""
    model = stack["models"][kind]
    if kind == "load":
        pred = model.predict_array(x)
        return {"cpu_util_pred": pred[:, 0], "mem_util_pred": pred[:, 1]}
    if kind == "anomaly":
        score = model.score(x)
        return {"anomaly_score": score, "anomaly_flag": score >= model.threshold_}
    return {"q_values": model.q_values(x)}


def v1_as_outputs(kind: str, predictions: list) -> dict[str, np.ndarray]:
    p = np.asarray(predictions, dtype=np.float64)
    if kind == "load":
        return {"cpu_util_pred": p[:, 0], "mem_util_pred": p[:, 1]}
    return {"anomaly_score": p} if kind == "anomaly" else {"q_values": p}


def v2_outputs(resp: httpx.Response) -> dict[str, np.ndarray]:
    """Outputs of a v2 answer, JSON or binary extension."""
    length = resp.headers.get("inference-header-content-length")
    head = orjson.loads(resp.content[: int(length)] if length else resp.content)
    out, offset = {}, int(length or 0)
    for o in head["outputs"]:
        if "data" in o:
            out[o["name"]] = np.asarray(o["data"], dtype=bool if o["datatype"] == "BOOL" else float)
        else:
            size = o["parameters"]["binary_data_size"]
            dtype = "?" if o["datatype"] == "BOOL" else "<f4"
            out[o["name"]] = np.frombuffer(resp.content[offset : offset + size], dtype=dtype)
            offset += size
    return out


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    for name, value in got.items():
        if value.dtype == bool:
            np.testing.assert_array_equal(value, want[name], err_msg=name)
        else:
            np.testing.assert_allclose(value, want[name], rtol=1e-6, atol=1e-7, err_msg=name)


def post_v2(stack, kind: str, x: np.ndarray, *, names=None, binary=False, binary_out=False):
    server = stack["servers"][kind]
    tensor = {"name": "features", "shape": list(x.shape), "datatype": "FP32", "parameters": {}}
    if names is not None:
        tensor["parameters"]["feature_names"] = list(names)
    doc: dict = {"inputs": [tensor]}
    if binary_out:
        doc["parameters"] = {"binary_data_output": True}
    if binary:
        tensor["parameters"]["binary_data_size"] = x.nbytes
        head = orjson.dumps(doc)
        return stack["client"].post(
            server.infer_url,
            content=head + x.astype("<f4").tobytes(),
            headers={"inference-header-content-length": str(len(head))},
        )
    tensor["data"] = x.ravel()
    return stack["client"].post(
        server.infer_url,
        content=orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY),
        headers={"content-type": "application/json"},
    )


@pytest.mark.parametrize("kind", list(NAMES))
def test_v1_and_v2_answer_what_the_model_computes(stack, kind):
    x = batch(kind)
    want = expected(stack, kind, x)
    server = stack["servers"][kind]
    v1 = stack["client"].post(
        f"{server.url}/v1/models/{server.model_name}:predict",
        content=orjson.dumps({"instances": x}, option=orjson.OPT_SERIALIZE_NUMPY),  # NaN: null
        headers={"content-type": "application/json"},
    )
    assert v1.status_code == 200, v1.text
    assert len(v1.json()["predictions"]) == N
    assert_same(v1_as_outputs(kind, v1.json()["predictions"]), want)
    for binary, binary_out in [(False, False), (True, False), (True, True)]:
        resp = post_v2(stack, kind, x, binary=binary, binary_out=binary_out)
        assert resp.status_code == 200, resp.text
        got = v2_outputs(resp)
        assert set(got) == set(want) and all(len(v) == N for v in got.values())
        assert_same(got, want)


@pytest.mark.parametrize("kind", list(NAMES))
def test_named_columns_in_any_order_with_extras(stack, kind):
    x = batch(kind, seed=5)
    default = list(FEATURES) if kind == "placement" else COLS
    order = np.random.default_rng(0).permutation(len(default))
    shuffled = np.column_stack([x[:, order], np.ones(N, dtype=np.float32)])
    names = [default[i] for i in order] + ["not_a_model_column"]
    resp = post_v2(stack, kind, shuffled, names=names, binary=True)
    assert resp.status_code == 200, resp.text
    assert_same(v2_outputs(resp), expected(stack, kind, x))


def test_registry_source_serves_the_champion_version(stack, registry):
    resp = post_v2(stack, "placement", batch("placement"))
    assert resp.json()["model_version"] == stack["outcome"].version
    ref = resolve_ref(NAMES["placement"], alias="champion", tracking_uri=registry)
    isvc = inference_service("placement", ref, storage_root="s3://models")
    annotations = isvc["metadata"]["annotations"]
    assert annotations["hydatis.io/run-id"] == stack["outcome"].run_id
    (container,) = isvc["spec"]["predictor"]["containers"]
    assert container["env"] == [
        {"name": "STORAGE_URI", "value": f"s3://models/{NAMES['placement']}/{ref.version}"}
    ]


@pytest.mark.parametrize("kind", list(NAMES))
def test_empty_batch(stack, kind):
    server = stack["servers"][kind]
    width = len(FEATURES) if kind == "placement" else len(COLS)
    v1 = stack["client"].post(
        f"{server.url}/v1/models/{server.model_name}:predict", json={"instances": []}
    )
    assert v1.status_code == 200 and v1.json() == {"predictions": []}
    resp = post_v2(stack, kind, np.zeros((0, width), dtype=np.float32))
    assert resp.status_code == 200, resp.text
    assert all(len(v) == 0 for v in v2_outputs(resp).values())


def _v2(tensor: dict) -> dict:
    return {"inputs": [{"name": "features", "datatype": "FP32", **tensor}]}


MALFORMED = [
    ("v1", b"not json", "request format"),  # kserve's own v1 decoder answers this one
    ("v1", {"rows": [[1.0]]}, "instances"),
    ("v1", {"instances": [[1.0, 2.0]]}, "columns"),
    ("v1", {"instances": [["abc"] * 26]}, "numbers"),
    ("v1", {"instances": [[0.1] * 26, [0.1] * 25]}, "numbers"),
    ("v2", b"{", "not JSON"),
    ("v2", {"inputs": []}, "inputs"),
    ("v2", _v2({"shape": [2, 26], "data": [0.5] * 51}), "needs 52 values"),
    ("v2", _v2({"shape": [52], "data": [0.5] * 52}), "shape"),
    ("v2", _v2({"shape": [1, 26], "data": ["x"] * 26}), "numbers"),
    (
        "v2",
        _v2({"shape": [1, 2], "data": [1, 2], "parameters": {"feature_names": ["a", "b"]}}),
        "missing column",
    ),
    (
        "v2",
        {"inputs": [{"name": "features", "datatype": "BYTES", "shape": [1, 1], "data": ["a"]}]},
        "not numeric",
    ),
    ("v2", _v2({"shape": [1, 26], "data": [1e39] * 26}), "infinite"),
]


@pytest.mark.parametrize(
    ("protocol", "body", "reason"),
    MALFORMED,
    ids=[
        "v1-not-json",
        "v1-no-instances",
        "v1-wrong-width",
        "v1-non-numeric",
        "v1-ragged",
        "v2-not-json",
        "v2-no-inputs",
        "v2-count-vs-shape",
        "v2-1d-shape",
        "v2-non-numeric",
        "v2-missing-column",
        "v2-bytes-datatype",
        "v2-infinite",
    ],
)
def test_malformed_requests_get_400_with_a_reason(stack, protocol, body, reason):
    server = stack["servers"]["placement"]
    url = (
        f"{server.url}/v1/models/{server.model_name}:predict"
        if protocol == "v1"
        else server.infer_url
    )
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    resp = stack["client"].post(url, content=content, headers={"content-type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert reason in resp.json()["error"]
    ok = post_v2(stack, "placement", batch("placement"))
    assert ok.status_code == 200 and stack["servers"].alive()["placement"]


def test_a_server_that_cannot_load_fails_fast_naming_its_source(tmp_path):
    missing = tmp_path / "no-such-model"
    with (
        pytest.raises(ServerStartError, match="no-such-model"),
        serve_models({"anomaly": missing}, log_dir=tmp_path, timeout_s=60),
    ):
        pass
