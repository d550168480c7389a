"""The v2 (Open Inference Protocol) REST infer route, decoded with orjson and numpy.

kserve 0.21's own ``POST /v2/models/{name}/infer`` has two problems for us:

- its pydantic request model allows only scalar parameters, so the contract's
  ``"parameters": {"feature_names": [...]}`` is refused with HTTP 422;
- it is slow where the extender needs speed: a JSON body is validated element by element
  (about 5 ms for 500 x 26), and a binary-extension body is turned back into a Python
  list before the model sees it (slower than JSON).

This route serves the same URL and protocol (JSON, and the binary tensor extension with
``Inference-Header-Content-Length``) and still goes through kserve's ``DataPlane`` — model
lookup, readiness, pre/post-processing, metrics — only decoding and encoding are ours.
It is installed on kserve's FastAPI app before kserve registers its routes, so it wins.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import ORJSONResponse
from kserve.errors import ModelNotReady
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.infer_type import InferInput, InferRequest, InferResponse, RequestedOutput

from serving._base import InputError

__all__ = [
    "BINARY_DTYPES",
    "INFERENCE_HEADER",
    "V2_INFER_PATH",
    "decode_rest_v2",
    "encode_rest_v2",
    "install_v2_infer_route",
]

INFERENCE_HEADER = "inference-header-content-length"
V2_INFER_PATH = "/v2/models/{model_name}/infer"
#: Datatypes the binary extension carries, as little-endian numpy dtypes.
BINARY_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_ROUTE_MARK = "hydatis_v2_infer"


def _shape(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    ):
        raise InputError(f"{where}: 'shape' must be a list of non-negative integers")
    return value


def _json_length(header: str | None, body_length: int) -> int:
    if header is None:
        return body_length
    try:
        length = int(header)
    except ValueError:
        raise InputError(f"{INFERENCE_HEADER} is not an integer: {header!r}") from None
    if not 0 <= length <= body_length:
        raise InputError(f"{INFERENCE_HEADER} {length} is outside the body ({body_length} B)")
    return length


def decode_rest_v2(body: bytes, header_length: str | None, model_name: str) -> InferRequest:
    """Parse a v2 REST request body (JSON, or JSON + binary tensors) into an InferRequest.

    Binary inputs become numpy arrays (no copy of the body); JSON ``data`` stays the list
    orjson made, and the predictor converts it with one ``np.asarray``.

    Args:
        body: the raw request body.
        header_length: the ``Inference-Header-Content-Length`` header (None: all JSON).
        model_name: the model named in the URL.

    Raises:
        InputError: anything malformed, with the reason.
    """
    json_length = _json_length(header_length, len(body))
    try:
        doc = orjson.loads(body[:json_length])
    except orjson.JSONDecodeError as exc:
        raise InputError(f"request body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InputError("a v2 request is a JSON object with 'inputs'")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InputError("'inputs' must be a non-empty list of tensors")
    offset = json_length
    decoded: list[InferInput] = []
    for i, item in enumerate(inputs):
        where = f"inputs[{i}]"
        if not isinstance(item, dict):
            raise InputError(f"{where} must be an object")
        name, datatype = item.get("name"), item.get("datatype")
        if not isinstance(name, str) or not isinstance(datatype, str):
            raise InputError(f"{where}: 'name' and 'datatype' must be strings")
        shape = _shape(item.get("shape"), where)
        params = item.get("parameters") or {}
        if not isinstance(params, dict):
            raise InputError(f"{where}: 'parameters' must be an object")
        if "data" in item:
            data: Any = item["data"]
        elif "binary_data_size" in params:
            data, offset = _binary(body, offset, params["binary_data_size"], datatype, shape, where)
        else:
            raise InputError(f"{where}: neither 'data' nor parameters.binary_data_size")
        decoded.append(InferInput(name, shape, datatype, data=data, parameters=params))
    params = doc.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise InputError("'parameters' must be an object")
    request_id = doc.get("id")
    return InferRequest(
        model_name=model_name,
        infer_inputs=decoded,
        request_id=None if request_id is None else str(request_id),
        parameters=params,
        request_outputs=_requested(doc.get("outputs")),
    )


def _binary(
    body: bytes, offset: int, size: Any, datatype: str, shape: list[int], where: str
) -> tuple[np.ndarray, int]:
    dtype = BINARY_DTYPES.get(datatype.upper())
    if dtype is None:
        raise InputError(f"{where}: binary data of datatype {datatype} is not supported")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InputError(f"{where}: binary_data_size must be a non-negative integer")
    count = math.prod(shape)
    if size != count * dtype.itemsize:
        raise InputError(
            f"{where}: binary_data_size {size} B does not hold shape {shape} of {datatype} "
            f"({count * dtype.itemsize} B)"
        )
    if offset + size > len(body):
        raise InputError(f"{where}: the body ends before its {size} B of binary data")
    array = np.frombuffer(body, dtype=dtype, count=count, offset=offset).reshape(shape)
    return array, offset + size


def _requested(outputs: Any) -> list[RequestedOutput] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise InputError("'outputs' must be a list of objects with a 'name'")
    return [RequestedOutput(o["name"], o.get("parameters") or {}) for o in outputs] or None


def encode_rest_v2(response: InferResponse, request: InferRequest) -> tuple[bytes, int | None]:
    """Encode a v2 response as JSON, or JSON + binary tensors where the request asked.

    Binary output follows the extension: request parameter ``binary_data_output`` for all
    outputs, overridden per requested output by its ``binary_data`` parameter. Requested
    outputs (``"outputs": [{"name": ...}]``) select and order what is returned.

    Returns:
        (body, JSON header length) — the length is None when the body is all JSON.

    Raises:
        InputError: a requested output the model does not produce.
    """
    binary_all = bool((request.parameters or {}).get("binary_data_output", False))
    by_name = {o.name: o for o in response.outputs}
    if request.request_outputs:
        selected = []
        for req in request.request_outputs:
            if req.name not in by_name:
                raise InputError(f"unknown output {req.name!r}; this model has {sorted(by_name)}")
            flag = req.binary_data
            selected.append((by_name[req.name], binary_all if flag is None else bool(flag)))
    else:
        selected = [(o, binary_all) for o in response.outputs]
    outputs, blobs = [], []
    for out, binary in selected:
        dtype = BINARY_DTYPES.get(out.datatype)
        array = np.ascontiguousarray(out.data if out.data is not None else out.as_numpy())
        item: dict[str, Any] = {
            "name": out.name,
            "shape": list(out.shape),
            "datatype": out.datatype,
        }
        params = dict(out.parameters or {})
        if binary and dtype is not None:
            blob = array.astype(dtype, copy=False).tobytes()
            params["binary_data_size"] = len(blob)
            blobs.append(blob)
        else:
            item["data"] = array
        if params:
            item["parameters"] = params
        outputs.append(item)
    doc: dict[str, Any] = {
        "id": response.id,
        "model_name": response.model_name,
        "model_version": response.model_version,
        "outputs": outputs,
    }
    if response.parameters:
        doc["parameters"] = dict(response.parameters)
    head = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if blobs:
        return b"".join([head, *blobs]), len(head)
    return head, None


def install_v2_infer_route(app: FastAPI, dataplane: DataPlane) -> None:
    """Add the v2 infer route to ``app`` (once), ahead of the routes kserve adds later."""
    if any(getattr(r, "name", None) == _ROUTE_MARK for r in app.router.routes):
        return

    async def infer(model_name: str, request: Request) -> Response:
        if not await dataplane.model_ready(model_name, True):
            raise ModelNotReady(model_name)
        body = await request.body()
        infer_request = decode_rest_v2(body, request.headers.get(INFERENCE_HEADER), model_name)
        headers = dict(request.headers)
        response, response_headers = await dataplane.infer(model_name, infer_request, headers)
        if not isinstance(response, InferResponse):  # a model that answers v2 with a dict
            return ORJSONResponse(response)
        content, json_length = encode_rest_v2(response, infer_request)
        out_headers = {
            k: v
            for k, v in response_headers.items()
            if k.lower() not in ("content-length", "content-type")
        }
        if json_length is None:
            return Response(content, media_type="application/json", headers=out_headers)
        out_headers[INFERENCE_HEADER] = str(json_length)
        return Response(content, media_type="application/octet-stream", headers=out_headers)

    app.add_api_route(V2_INFER_PATH, infer, methods=["POST"], name=_ROUTE_MARK, response_model=None)
