"""The predictors' shared parts in process: decoding v1/v2 bodies, column selection, typed
errors, model loading from each kind of source, and the v2 route ahead of kserve's."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import orjson
import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kserve.errors import InvalidInput, invalid_input_handler
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.v2_endpoints import register_v2_endpoints

from hydatis.errors import HydatisError
from serving import _registry
from serving._base import Columns, HydatisModel, InputError, decode_v1, decode_v2
from serving._rest import decode_rest_v2, encode_rest_v2, install_v2_infer_route
from serving.errors import ModelLoadError, ServingError
from serving.launch import dir_sources, registry_sources, serve_models

DEFAULT = ["a", "b", "c"]


class SumModel(HydatisModel):
    """A stand-in predictor: the model is the list of its columns; output = row sums."""

    kind = "load"
    OUTPUTS = (("total", "FP32"), ("positive", "BOOL"))

    @classmethod
    def default_columns(cls) -> list[str]:
        return list(DEFAULT)

    def load_model(self, path: Path) -> SimpleNamespace:
        return SimpleNamespace(feature_names_=json.loads((path / "cols.json").read_text()))

    def infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        total = x.sum(axis=1)
        return {"total": total, "positive": total > 0}

    def v1_predictions(self, outputs: dict[str, np.ndarray]) -> list:
        return outputs["total"].tolist()


def model_dir(root: Path, cols=("c", "a")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cols.json").write_text(json.dumps(list(cols)))
    return root


@pytest.fixture
def model(tmp_path) -> SumModel:
    m = SumModel("sum", model_dir(tmp_path / "model"))
    assert m.load() and m.ready
    return m


def v2_request(data, shape, *, datatype="FP32", params=None, name="features", req_params=None):
    body = {"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}]}
    if params is not None:
        body["inputs"][0]["parameters"] = params
    if req_params is not None:
        body["parameters"] = req_params
    return decode_rest_v2(orjson.dumps(body), None, "sum")


# ---------------------------------------------------------------------------- errors


def test_input_error_is_kserves_invalid_input_and_ours():
    err = InputError("missing column(s) ['x']")
    assert isinstance(err, InvalidInput) and isinstance(err, HydatisError)
    assert str(err) == "missing column(s) ['x']"
    response = asyncio.run(invalid_input_handler(None, err))
    assert response.status_code == 400
    assert json.loads(response.body) == {"error": "missing column(s) ['x']"}


def test_model_load_error_names_the_source():
    err = ModelLoadError("models:/x@champion", "no such alias")
    assert isinstance(err, ServingError) and "models:/x@champion" in str(err)


# ---------------------------------------------------------------------------- v1


@pytest.mark.parametrize(
    ("payload", "shape", "names"),
    [
        ({"instances": [[1, 2, 3], [4, 5, 6]]}, (2, 3), None),
        ({"instances": []}, (0, 0), None),
        ({"instances": [[1, None, 3]]}, (1, 3), None),
        ({"inputs": [[1, 2]]}, (1, 2), None),
        ({"instances": [[1, 2]], "parameters": {"feature_names": ["x", "y"]}}, (1, 2), ["x", "y"]),
        (b'{"instances": [[1.5, 2.5]]}', (1, 2), None),
    ],
    ids=["batch", "empty-batch", "null-is-nan", "inputs-key", "named", "bytes-body"],
)
def test_decode_v1(payload, shape, names):
    x, got = decode_v1(payload)
    assert x.shape == shape and x.dtype == np.float32 and got == names
    if shape == (1, 3):
        assert np.isnan(x[0, 1])


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([[1, 2]], "JSON object"),
        ({"rows": [[1]]}, "'instances'"),
        ({"instances": {"a": 1}}, "list of rows"),
        ({"instances": [1, 2, 3]}, "2-D"),
        ({"instances": [[1, 2], [3]]}, "numbers"),
        ({"instances": [["abc", 1]]}, "numbers"),
        ({"instances": [[{"a": 1}]]}, "numbers"),
        ({"instances": [[1]], "parameters": {"feature_names": [1]}}, "feature_names"),
        (b"{not json", "not JSON"),
    ],
    ids=[
        "not-an-object",
        "no-instances",
        "instances-not-list",
        "flat-row",
        "ragged",
        "non-numeric",
        "dict-cell",
        "names-not-strings",
        "bytes-not-json",
    ],
)
def test_decode_v1_rejects(payload, reason):
    with pytest.raises(InputError, match=reason):
        decode_v1(payload)


# ---------------------------------------------------------------------------- v2


@pytest.mark.parametrize(
    ("request_", "shape", "names"),
    [
        (lambda: v2_request([1, 2, 3, 4, 5, 6], [2, 3]), (2, 3), None),
        (lambda: v2_request([[1, 2, 3], [4, 5, 6]], [2, 3]), (2, 3), None),
        (lambda: v2_request([], [0, 3]), (0, 3), None),
        (lambda: v2_request([1, None], [1, 2]), (1, 2), None),
        (lambda: v2_request([1, 2], [1, 2], datatype="INT64"), (1, 2), None),
        (lambda: v2_request([1, 2], [1, 2], name="x"), (1, 2), None),
        (
            lambda: v2_request([1, 2], [1, 2], params={"feature_names": ["p", "q"]}),
            (1, 2),
            ["p", "q"],
        ),
        (
            lambda: v2_request([1, 2], [1, 2], req_params={"feature_names": ["p", "q"]}),
            (1, 2),
            ["p", "q"],
        ),
        (lambda: v2_request([1, 2], [1, 2], params={"feature_names": "p, q"}), (1, 2), ["p", "q"]),
    ],
    ids=[
        "flat",
        "nested",
        "empty-batch",
        "null-is-nan",
        "int-datatype",
        "one-input-any-name",
        "names-on-input",
        "names-on-request",
        "names-comma-string",
    ],
)
def test_decode_v2(request_, shape, names):
    x, got = decode_v2(request_())
    assert x.shape == shape and x.dtype == np.float32 and got == names


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (lambda: v2_request(["a", "b"], [1, 2], datatype="BYTES"), "not numeric"),
        (lambda: v2_request([1, 2, 3], [3]), "shape"),
        (lambda: v2_request([1, 2, 3], [2, 2]), "needs 4 values, got 3"),
        (lambda: v2_request(["x", 1], [1, 2]), "numbers"),
        (lambda: v2_request([1, 2], [1, 2], params={"feature_names": {"a": 1}}), "feature_names"),
    ],
    ids=["bytes-datatype", "1d-shape", "count-vs-shape", "non-numeric", "names-not-a-list"],
)
def test_decode_v2_rejects(request_, reason):
    with pytest.raises(InputError, match=reason):
        decode_v2(request_())


def test_decode_v2_needs_the_features_input_among_several():
    body = {
        "inputs": [
            {"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1]},
            {"name": "y", "shape": [1, 1], "datatype": "FP32", "data": [2]},
        ]
    }
    with pytest.raises(InputError, match="'features'"):
        decode_v2(decode_rest_v2(orjson.dumps(body), None, "m"))


# ---------------------------------------------------------------------------- REST v2 codec


def binary_body(x: np.ndarray, **doc) -> tuple[bytes, str]:
    tensor = {"name": "features", "shape": list(x.shape), "datatype": "FP32"}
    tensor["parameters"] = {"binary_data_size": x.nbytes}
    head = orjson.dumps({"inputs": [tensor], **doc})
    return head + x.astype("<f4").tobytes(), str(len(head))


def test_decode_rest_v2_binary_extension_is_a_view_of_the_body():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    body, length = binary_body(x, id="r1")
    req = decode_rest_v2(body, length, "m")
    assert req.id == "r1" and isinstance(req.inputs[0].data, np.ndarray)
    np.testing.assert_array_equal(decode_v2(req)[0], x)


@pytest.mark.parametrize(
    ("body", "length", "reason"),
    [
        (b"[1]", None, "JSON object"),
        (b'{"inputs": 3}', None, "'inputs'"),
        (b'{"inputs": [{"name": "f", "datatype": "FP32", "shape": [1, 1]}]}', None, "neither"),
        (
            b'{"inputs": [{"name": "f", "datatype": "FP32", "shape": [-1], "data": []}]}',
            None,
            "non-negative",
        ),
        (b'{"inputs": []}xx', "abc", "not an integer"),
        (b'{"inputs": []}', "99", "outside the body"),
        (
            b'{"inputs": [{"name": "f", "datatype": "FP32", "shape": [1, 2],'
            b' "parameters": {"binary_data_size": 4}}]}',
            None,
            "does not hold",
        ),
        (
            b'{"inputs": [{"name": "f", "datatype": "FP32", "shape": [1, 2],'
            b' "parameters": {"binary_data_size": 8}}]}',
            None,
            "body ends",
        ),
        (
            b'{"inputs": [{"name": "f", "datatype": "BYTES", "shape": [1],'
            b' "parameters": {"binary_data_size": 1}}]}',
            None,
            "not supported",
        ),
        (
            b'{"inputs": [{"name": "f", "datatype": "FP32", "shape": [1], "data": [1]}],'
            b' "outputs": [1]}',
            None,
            "'outputs'",
        ),
    ],
    ids=[
        "not-object",
        "inputs-not-list",
        "no-data",
        "negative-dim",
        "bad-header",
        "header-too-long",
        "size-vs-shape",
        "short-body",
        "binary-bytes",
        "outputs-not-objects",
    ],
)
def test_decode_rest_v2_rejects(body, length, reason):
    with pytest.raises(InputError, match=reason):
        decode_rest_v2(body, length, "m")


def test_encode_rest_v2_json_binary_and_requested_outputs(model):
    x = np.array([[1, 2, 3], [-5, 0, 1]], dtype=np.float32)
    req = v2_request(x.ravel().tolist(), [2, 3])
    doc = orjson.loads(encode_rest_v2(model.predict(req), req)[0])
    assert [o["name"] for o in doc["outputs"]] == ["total", "positive"]
    assert doc["outputs"][0]["data"] == [4.0, -4.0] and doc["outputs"][1]["data"] == [True, False]

    body, length = binary_body(x, parameters={"binary_data_output": True})
    req = decode_rest_v2(body, length, "sum")
    content, head = encode_rest_v2(model.predict(req), req)
    total, positive = orjson.loads(content[:head])["outputs"]
    assert positive["parameters"]["binary_data_size"] == 2
    assert total["parameters"]["binary_data_size"] == 8 and "data" not in total
    np.testing.assert_array_equal(np.frombuffer(content[head : head + 8], "<f4"), [4, -4])
    assert content[head + 8 :] == b"\x01\x00"

    body, length = binary_body(
        x, outputs=[{"name": "positive", "parameters": {"binary_data": False}}]
    )
    req = decode_rest_v2(body, length, "sum")
    content, head = encode_rest_v2(model.predict(req), req)
    assert head is None and [o["name"] for o in orjson.loads(content)["outputs"]] == ["positive"]

    body, length = binary_body(x, outputs=[{"name": "nope"}])
    req = decode_rest_v2(body, length, "sum")
    with pytest.raises(InputError, match="unknown output 'nope'"):
        encode_rest_v2(model.predict(req), req)


# ---------------------------------------------------------------------------- columns


@pytest.mark.parametrize(
    ("model_cols", "x", "names", "want"),
    [
        (["a", "b", "c"], [[1, 2, 3]], None, [[1, 2, 3]]),
        (["c", "a"], [[1, 2, 3]], None, [[3, 1]]),
        (["c", "a"], [[3, 1]], None, [[3, 1]]),
        (["c", "a"], [[9, 1, 3]], ["z", "a", "c"], [[3, 1]]),
        (["c", "a"], [[1, np.nan, 3]], None, [[3, 1]]),
        (["a", "b", "c"], [[np.nan, 2, 3]], None, [[np.nan, 2, 3]]),
        (None, [[1, 2]], None, [[1, 2]]),
        (None, [[1, 2]], ["p", "q"], [[1, 2]]),
    ],
    ids=[
        "default-is-model-order",
        "subset-of-default",
        "model-own-width",
        "named-superset",
        "nan-in-dropped-column",
        "nan-kept",
        "unnamed-model-positional",
        "unnamed-model-named",
    ],
)
def test_columns_select(model_cols, x, names, want):
    n = len(model_cols) if model_cols else 2
    got = Columns(model_cols, n, DEFAULT).select(np.asarray(x, dtype=np.float32), names)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, np.asarray(want, dtype=np.float32))


@pytest.mark.parametrize(
    ("model_cols", "x", "names", "reason"),
    [
        (["c", "a"], [[1, 2]], ["a", "b"], r"missing column\(s\) \['c'\]"),
        (["c", "a"], [[1, 2, 3, 4]], None, "expected 3 columns"),
        (["c", "a"], [[1, 2]], ["a", "a"], "repeats"),
        (["c", "a"], [[1, 2]], ["a", "b", "c"], "3 feature_names for 2 columns"),
        (["c", "x"], [[1, 2, 3]], None, r"default order lacks"),
        (["c", "a"], [[1, np.inf, 3]], None, None),
        (["c", "a"], [[1, 2, -np.inf]], None, r"infinite value in column\(s\) \['c'\]"),
        (None, [[1, 2, 3]], ["a", "b", "c"], "no column names"),
    ],
    ids=[
        "missing-column",
        "wrong-width",
        "duplicate-names",
        "names-vs-width",
        "model-column-not-in-default",
        "inf-in-dropped-column",
        "inf",
        "unnamed-model-wrong-width",
    ],
)
def test_columns_reject(model_cols, x, names, reason):
    n = len(model_cols) if model_cols else 2
    columns = Columns(model_cols, n, DEFAULT)
    if reason is None:  # the offending value is in a column the model does not read
        columns.select(np.asarray(x, dtype=np.float32), names)
        return
    with pytest.raises(InputError, match=reason):
        columns.select(np.asarray(x, dtype=np.float32), names)


def test_columns_empty_batch_has_the_model_width():
    got = Columns(["c", "a"], 2, DEFAULT).select(np.zeros((0, 0), dtype=np.float32))
    assert got.shape == (0, 2)


# ---------------------------------------------------------------------------- predictor


def test_constructor_does_no_work():
    m = SumModel("sum", "/nowhere/at/all")
    assert not m.ready and m.model is None


def test_predict_v1_and_v2(model):
    x = [[1, 2, 3], [-5, 0, 1]]
    assert model.predict({"instances": x}) == {"predictions": [4.0, -4.0]}
    resp = model.predict(v2_request(x, [2, 3]))
    assert resp.model_name == "sum" and resp.id
    total, positive = resp.outputs
    assert total.datatype == "FP32" and positive.datatype == "BOOL"
    np.testing.assert_array_equal(total.data, [4, -4])
    empty = model.predict(v2_request([], [0, 3]))
    assert [o.shape for o in empty.outputs] == [[0], [0]]
    assert model.predict({"instances": []}) == {"predictions": []}


def test_predict_needs_load():
    with pytest.raises(ModelLoadError, match="load"):
        SumModel("sum", "/x").predict({"instances": [[1, 2, 3]]})


def test_load_from_an_mlflow_pyfunc_directory(tmp_path):
    model_dir(tmp_path / "pyfunc" / "artifacts" / "model", cols=("b",))
    mlmodel = {
        "flavors": {"python_function": {"artifacts": {"model_dir": {"path": "artifacts/model"}}}}
    }
    (tmp_path / "pyfunc" / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    m = SumModel("sum", tmp_path / "pyfunc")
    assert m.load() and m.model.feature_names_ == ["b"]


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{tmp}/missing", "is not a directory"),
        ("{tmp}/bad-pyfunc", "not a HYDATIS pyfunc"),
        ("{tmp}/empty", "FileNotFoundError"),
        ("models:/only-a-name", "models:/NAME@ALIAS"),
        ("models:/m@champion", "no MLflow registry"),
    ],
    ids=["missing-dir", "pyfunc-without-model-dir", "no-model-files", "bad-uri", "no-registry"],
)
def test_load_errors_name_the_source(tmp_path, source, reason):
    (tmp_path / "bad-pyfunc").mkdir()
    (tmp_path / "bad-pyfunc" / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "empty").mkdir()
    source = source.format(tmp=tmp_path)
    m = SumModel("sum", source, tracking_uri=f"sqlite:///{tmp_path / 'none.db'}")
    with pytest.raises(ModelLoadError, match=reason) as info:
        m.load()
    assert info.value.source == source and not m.ready


# ---------------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("uri", "want"),
    [
        ("models:/hydatis-load-predictor@champion", ("hydatis-load-predictor", "champion", None)),
        ("models:/m/12", ("m", None, "12")),
    ],
    ids=["alias", "version"],
)
def test_parse_models_uri(uri, want):
    assert _registry.parse_models_uri(uri) == want


@pytest.mark.parametrize("uri", ["models:/m", "models:/m/Production", "runs:/abc/model"])
def test_parse_models_uri_rejects(uri):
    with pytest.raises(ModelLoadError):
        _registry.parse_models_uri(uri)


def test_default_tracking_uri_follows_the_registration_rule(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("HYDATIS_WORK_DIR", str(tmp_path / "work"))
    want = f"sqlite:///{(tmp_path / 'work' / 'mlflow' / 'mlflow.db').resolve()}"
    assert _registry.default_tracking_uri() == want
    assert not (tmp_path / "work").exists()  # serving creates nothing
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    assert _registry.default_tracking_uri() == "http://mlflow:5000"
    assert _registry.default_tracking_uri("sqlite:///x.db") == "sqlite:///x.db"


# ---------------------------------------------------------------------------- launch


def test_launch_sources():
    assert registry_sources("challenger")["placement"] == (
        "models:/hydatis-placement-agent@challenger"
    )
    assert dir_sources(load="m/load") == {"load": str(Path("m/load"))}


@pytest.mark.parametrize("sources", [{}, {"agent": "x"}], ids=["none", "unknown-kind"])
def test_launch_rejects_bad_sources_before_starting_anything(sources, tmp_path):
    with pytest.raises(ServingError, match="sources"), serve_models(sources, log_dir=tmp_path):
        pass


# ---------------------------------------------------------------------------- the route


def test_v2_route_wins_over_kserves_and_takes_list_parameters(model):
    """kserve's own v2 route refuses list-valued parameters with 422; ours is found first."""
    repo = ModelRepository()
    repo.update(model)
    dataplane = DataPlane(model_registry=repo)
    app = FastAPI()
    install_v2_infer_route(app, dataplane)
    install_v2_infer_route(app, dataplane)  # idempotent
    register_v2_endpoints(app, dataplane, ModelRepositoryExtension(model_registry=repo))
    app.add_exception_handler(InvalidInput, invalid_input_handler)
    tensor = {"name": "features", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}
    tensor["parameters"] = {"feature_names": ["c", "b", "a"]}
    client = TestClient(app)
    resp = client.post("/v2/models/sum/infer", json={"inputs": [tensor]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["outputs"][0]["data"] == [4.0]  # c=1 and a=3
    tensor["parameters"] = {"feature_names": ["x", "y", "z"]}
    resp = client.post("/v2/models/sum/infer", json={"inputs": [tensor]})
    assert resp.status_code == 400 and "missing column" in resp.json()["error"]
