"""What the three predictors share: request decoding, column selection, model loading.

A predictor is a thin adapter (STYLE 1): it turns a v1 or v2 request into one float32
matrix in the model's own column order, makes **one** batched model call, and wraps the
arrays in the protocol's answer. Everything here is array work on the whole batch; no
loop runs per row.

Columns. A request's matrix is in the *default* order (the 75 node features for the load
predictor and the anomaly detector, the 26 placement features for the agent) unless it
names its columns (v2 ``parameters.feature_names``, on the input or the request; v1
``parameters.feature_names``). The server picks the model's own ``feature_names_`` out
of them; a missing one is a 400 that names it. A matrix exactly as wide as the model's own
column list, with no names, is taken as being in the model's order.

Errors. Bad input raises :class:`InputError`, which is kserve's ``InvalidInput`` and so
answers HTTP 400 with ``{"error": reason}``; a model that cannot be loaded raises
:class:`serving.errors.ModelLoadError` naming the source.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import orjson
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InvalidInput
from kserve.utils.utils import generate_uuid

from serving._registry import (
    ModelRef,
    default_tracking_uri,
    download_version,
    model_dir_of,
    parse_models_uri,
    resolve_ref,
)
from serving.errors import ModelLoadError, ServingError

__all__ = [
    "DEFAULT_THREADS",
    "INPUT_NAME",
    "Columns",
    "HydatisModel",
    "InputError",
    "decode_v1",
    "decode_v2",
    "feature_names_param",
]

log = logging.getLogger(__name__)

#: The name of the v2 input tensor (any name is accepted when there is only one input).
INPUT_NAME = "features"
_NUMERIC = frozenset(
    {"BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
    | {"FP16", "FP32", "FP64"}
)
#: Compute threads per server (see :class:`HydatisModel`).
DEFAULT_THREADS = 1
_DTYPES = {"FP32": np.float32, "BOOL": np.bool_}  # of the outputs (for empty answers)
_CACHE_SIZE = 64  # distinct feature_names lists remembered per server (clients send few)


class InputError(ServingError, InvalidInput):
    """A request the predictor cannot score; kserve answers it with HTTP 400."""

    def __init__(self, reason: str) -> None:
        InvalidInput.__init__(self, reason)
        Exception.__init__(self, reason)

    def __str__(self) -> str:
        return self.reason


# ---------------------------------------------------------------------------- decoding


def feature_names_param(params: Mapping[str, Any] | None) -> list[str] | None:
    """The ``feature_names`` parameter: a list of names, or one comma-separated string.

    The string form exists because kserve's stock v2 JSON model accepts only scalar
    parameters; this server's own route accepts the list.

    Raises:
        InputError: present but not a list of strings.
    """
    if not params or params.get("feature_names") is None:
        return None
    names = params["feature_names"]
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InputError("parameters.feature_names must be a list of column names")
    return names


def _float32(data: Any) -> np.ndarray:
    """One ``np.asarray`` over the whole batch; JSON null becomes NaN."""
    try:
        return np.asarray(data, dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise InputError(f"values must be numbers (null for missing): {exc}") from None


def _rows(x: np.ndarray, what: str) -> np.ndarray:
    if x.ndim == 2:
        return x
    if x.size == 0:
        return x.reshape(0, 0)
    raise InputError(f"{what} must be a list of rows (a 2-D matrix), got {x.ndim}-D")


def decode_v1(payload: Any) -> tuple[np.ndarray, list[str] | None]:
    """A v1 body ``{"instances": [[row], ...]}`` -> (float32 matrix, column names or None).

    Raises:
        InputError: not an object with a list of equal-length numeric rows.
    """
    if isinstance(payload, bytes | bytearray):  # a body sent without a JSON content type
        try:
            payload = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"request body is not JSON: {exc}") from None
    if not isinstance(payload, Mapping):
        raise InputError('a v1 request is a JSON object {"instances": [[...], ...]}')
    key = "instances" if "instances" in payload else "inputs" if "inputs" in payload else None
    if key is None:
        raise InputError("a v1 request needs 'instances': a list of rows")
    rows = payload[key]
    if not isinstance(rows, list):
        raise InputError(f"'{key}' must be a list of rows")
    params = payload.get("parameters")
    names = feature_names_param(params if isinstance(params, Mapping) else None)
    return _rows(_float32(rows), f"'{key}'"), names


def _pick_input(request: InferRequest) -> Any:
    inputs = request.inputs or []
    for item in inputs:
        if item.name == INPUT_NAME:
            return item
    if len(inputs) == 1:
        return inputs[0]
    raise InputError(f"expected one input named {INPUT_NAME!r}, got {[i.name for i in inputs]}")


def decode_v2(request: InferRequest) -> tuple[np.ndarray, list[str] | None]:
    """A v2 request's ``features`` tensor ``[n, d]`` -> (float32 matrix, column names or None).

    The data may be flat or nested JSON, or a numpy array (the binary extension).

    Raises:
        InputError: a wrong datatype, shape or value count, or non-numeric values.
    """
    item = _pick_input(request)
    datatype = str(item.datatype).upper()
    if datatype not in _NUMERIC:
        raise InputError(f"input {item.name!r}: datatype {datatype} is not numeric")
    shape = list(item.shape or [])
    if len(shape) != 2 or any(not isinstance(d, int) or d < 0 for d in shape):
        raise InputError(f"input {item.name!r}: shape must be [n_rows, n_columns], got {shape}")
    data = item.data
    if isinstance(data, np.ndarray):
        x = data.astype(np.float32, copy=False)
    elif data is None:  # raw bytes decoded by kserve's own (gRPC) path
        try:
            x = item.as_numpy().astype(np.float32, copy=False)
        except ValueError as exc:
            raise InputError(f"input {item.name!r}: {exc}") from None
    else:
        x = _float32(data)
    if x.size != shape[0] * shape[1]:
        raise InputError(
            f"input {item.name!r}: shape {shape} needs {shape[0] * shape[1]} values, got {x.size}"
        )
    names = feature_names_param(item.parameters) or feature_names_param(request.parameters)
    return x.reshape(shape), names


# ---------------------------------------------------------------------------- columns


class Columns:
    """Maps a request's columns onto the model's, once per distinct column list.

    Args:
        model_features: the model's own input columns, in order (None: unnamed).
        n_features: how many columns the model takes.
        default: the column order of a request that names none.
    """

    def __init__(
        self, model_features: Sequence[str] | None, n_features: int, default: Sequence[str]
    ) -> None:
        self.model_features = None if model_features is None else list(model_features)
        self.n_features = int(n_features)
        self.default = list(default)
        self._cache: dict[tuple[str, ...], np.ndarray | None] = {}
        self._default_missing: list[str] = []
        self._default_idx: np.ndarray | None = None
        if self.model_features is not None:
            self._default_idx, self._default_missing = self._index(self.default)

    def _index(self, names: Sequence[str]) -> tuple[np.ndarray | None, list[str]]:
        """Positions of the model's columns in ``names`` (None = already in order)."""
        assert self.model_features is not None
        pos = {n: i for i, n in enumerate(names)}
        missing = [f for f in self.model_features if f not in pos]
        if missing:
            return None, missing
        idx = np.fromiter((pos[f] for f in self.model_features), dtype=np.intp)
        if len(names) == len(idx) and np.array_equal(idx, np.arange(len(idx))):
            return None, []
        return idx, []

    def _named(self, names: list[str], width: int) -> np.ndarray | None:
        if len(names) != width:
            raise InputError(f"{len(names)} feature_names for {width} columns")
        key = tuple(names)
        if key in self._cache:
            return self._cache[key]
        if len(set(names)) != len(names):
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise InputError(f"feature_names repeats {dupes[:10]}")
        if self.model_features is None:
            if width != self.n_features:
                raise InputError(
                    f"this model has no column names; send its {self.n_features} columns"
                )
            idx = None
        else:
            idx, missing = self._index(names)
            if missing:
                more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
                raise InputError(f"missing column(s) {missing[:10]}{more}")
        if len(self._cache) < _CACHE_SIZE:
            self._cache[key] = idx
        return idx

    def _unnamed(self, width: int) -> np.ndarray | None:
        if width == len(self.default) and self.model_features is not None:
            if self._default_missing:
                raise InputError(
                    f"the model needs column(s) {self._default_missing[:10]} that the default "
                    "order lacks; name the columns with parameters.feature_names"
                )
            return self._default_idx
        if width == self.n_features:
            return None  # the model's own columns, in its own order
        raise InputError(f"expected {len(self.default)} columns in the default order, got {width}")

    def select(self, x: np.ndarray, names: list[str] | None = None) -> np.ndarray:
        """The model's input matrix: its columns, in its order, float32, C-contiguous.

        Raises:
            InputError: wrong width, missing or repeated names, an infinite value.
        """
        if x.ndim != 2:
            raise InputError(f"expected a 2-D matrix, got shape {x.shape}")
        if x.shape[0] == 0:
            if names is not None and x.shape[1]:
                self._named(names, x.shape[1])
            return np.empty((0, self.n_features), dtype=np.float32)
        idx = self._unnamed(x.shape[1]) if names is None else self._named(names, x.shape[1])
        out = np.ascontiguousarray(x if idx is None else x[:, idx], dtype=np.float32)
        if np.isinf(out).any():
            cols = np.flatnonzero(np.isinf(out).any(axis=0))
            labels = self.model_features or [f"#{i}" for i in range(self.n_features)]
            raise InputError(f"infinite value in column(s) {[labels[i] for i in cols[:10]]}")
        return out


# ---------------------------------------------------------------------------- predictor


class HydatisModel(Model):
    """A kserve ``Model`` that serves one HYDATIS model (see the module docstring).

    Subclasses set :attr:`kind` and :attr:`OUTPUTS` and implement the model-specific
    hooks. The constructor only stores its arguments; :meth:`load` does the work.

    Args:
        name: the model name in the URL paths (the registered name by default).
        source: a model directory (native or MLflow pyfunc) or ``models:/NAME@ALIAS`` /
            ``models:/NAME/VERSION``.
        tracking_uri: the MLflow tracking/registry URI for a ``models:/`` source (default:
            ``MLFLOW_TRACKING_URI``, else the project's local store).
        threads: compute threads per request (XGBoost, torch, scikit-learn). One by
            default: the latency-critical batch is small (the per-pod call scores ~500
            rows), and extra threads spin against each other and the other servers on a
            busy node (measured: a small load predictor took 30 ms instead of 1 ms for 500
            rows with two threads on two busy cores). Raise it for large refresh batches
            on cores of their own.
    """

    #: ``load``, ``anomaly`` or ``placement``.
    kind: ClassVar[str] = ""
    #: (output name, v2 datatype), in answer order.
    OUTPUTS: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init__(
        self,
        name: str,
        source: str | Path,
        *,
        tracking_uri: str | None = None,
        threads: int = DEFAULT_THREADS,
    ) -> None:
        super().__init__(name)
        self.source = str(source)
        self.tracking_uri = tracking_uri
        self.threads = threads
        self.model: Any = None
        self.ref: ModelRef | None = None
        self.columns: Columns | None = None
        self._download: tempfile.TemporaryDirectory | None = None

    # -- hooks --------------------------------------------------------------------------

    @classmethod
    def default_columns(cls) -> list[str]:
        """The column order of a request that names none."""
        raise NotImplementedError

    def load_model(self, path: Path) -> Any:
        """Read the model from its own ``save()`` directory, using :attr:`threads`."""
        raise NotImplementedError

    def model_features(self) -> list[str] | None:
        """The loaded model's input columns, in order (None when it has no names)."""
        return list(self.model.feature_names_)

    def n_features(self) -> int:
        """How many columns the loaded model takes."""
        return len(self.model.feature_names_)

    def infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """One batched model call on the selected ``(n, d)`` float32 matrix, ``n >= 1``.

        Returns:
            One 1-D array of length ``n`` per name in :attr:`OUTPUTS`.
        """
        raise NotImplementedError

    def v1_predictions(self, outputs: dict[str, np.ndarray]) -> list:
        """The v1 ``predictions`` list built from :meth:`infer`'s arrays."""
        raise NotImplementedError

    # -- loading ------------------------------------------------------------------------

    def _resolve(self) -> Path:
        """The local model directory of :attr:`source`, downloading a ``models:/`` URI."""
        if not self.source.startswith("models:/"):
            return model_dir_of(Path(self.source).expanduser(), source=self.source)
        name, alias, version = parse_models_uri(self.source)
        uri = default_tracking_uri(self.tracking_uri)
        self.ref = resolve_ref(name, alias=alias, version=version, tracking_uri=uri)
        self._download = tempfile.TemporaryDirectory(prefix="hydatis-serving-")
        return download_version(self.ref, Path(self._download.name), tracking_uri=uri)

    def load(self) -> bool:
        """Resolve the source, read the model, prepare the column mapping; then ready.

        Raises:
            ModelLoadError: naming the source, whatever failed (registry, files, format).
        """
        try:
            directory = self._resolve()
            self.model = self.load_model(directory)
            self.columns = Columns(self.model_features(), self.n_features(), self.default_columns())
        except ModelLoadError:
            raise
        except ServingError as exc:
            raise ModelLoadError(self.source, str(exc)) from exc
        except Exception as exc:  # files missing, wrong format, unpickling: all "cannot load"
            raise ModelLoadError(self.source, f"{type(exc).__name__}: {exc}") from exc
        where = f"{self.ref.uri} (run {self.ref.run_id})" if self.ref else str(directory)
        log.info("model %s loaded from %s: %d input columns", self.name, where, self.n_features())
        self.ready = True
        return self.ready

    # -- serving ------------------------------------------------------------------------

    def get_input_types(self) -> list[dict]:
        """v2 metadata: one ``features`` matrix in the default column order."""
        return [
            {"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, len(self.default_columns())]}
        ]

    def get_output_types(self) -> list[dict]:
        """v2 metadata: one value per row for each output."""
        return [{"name": n, "datatype": t, "shape": [-1]} for n, t in self.OUTPUTS]

    def score(self, x: np.ndarray, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Select the model's columns of ``x`` and run the batch (empty in, empty out)."""
        if self.columns is None:
            raise ModelLoadError(self.source, "load() has not been called")
        selected = self.columns.select(x, names)
        if not selected.shape[0]:
            return {n: np.empty(0, dtype=_DTYPES[t]) for n, t in self.OUTPUTS}
        return self.infer(selected)

    def predict(
        self,
        payload: dict | InferRequest | bytes,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict | InferResponse:
        """Answer a v1 body (dict) or a v2 :class:`InferRequest` with one batched call."""
        if isinstance(payload, InferRequest):
            outputs = self.score(*decode_v2(payload))
            return InferResponse(
                response_id=payload.id or generate_uuid(),
                model_name=self.name,
                model_version=self.ref.version if self.ref else None,
                infer_outputs=[
                    InferOutput(name=n, shape=[len(outputs[n])], datatype=t, data=outputs[n])
                    for n, t in self.OUTPUTS
                ],
            )
        return {"predictions": self.v1_predictions(self.score(*decode_v1(payload)))}
