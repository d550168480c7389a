"""Clients of the three model servers (KServe, Open Inference Protocol v2 over REST).

One batched request scores many nodes: the input tensor is the feature matrix, its column
names ride in the input's ``parameters.feature_names`` so each server picks its own
columns. Every call has an explicit timeout; any failure — timeout, connection refused,
non-200, malformed answer — raises :class:`ModelCallError` with the model and the
reason, which the caller turns into a neutral part and a counted fallback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import orjson

from hydatis.errors import HydatisError
from scheduler_shim._http import HttpPoolError

__all__ = ["ModelCallError", "ModelClient", "httpx_post", "open_clients"]


class ModelCallError(HydatisError):
    """A model server did not give a usable answer in time."""

    def __init__(self, model: str, reason: str) -> None:
        self.model, self.reason = model, reason
        super().__init__(f"model {model}: {reason}")


@dataclass
class ModelClient:
    """Calls one model server's v2 ``infer`` endpoint.

    Args:
        post: sends (path, body, headers) to the server and returns (status, body): an
            :class:`~scheduler_shim._http.HttpPool`'s ``post`` in the service, any
            transport in tests (:func:`httpx_post`).
        model: the model's name on that server.
        timeout_s: the per-call timeout (the whole call, connect to last byte).
        observe: called with (model, seconds, ok) after every call (metrics).
        binary: send the matrix with the binary tensor extension (raw little-endian
            float32 after a JSON header) instead of a JSON list — less to encode and
            parse on both sides; answers are JSON either way.
    """

    post: Callable[[str, bytes, dict[str, str]], Awaitable[tuple[int, bytes]]]
    model: str
    timeout_s: float
    observe: Callable[[str, float, bool], None] | None = None
    binary: bool = True

    @property
    def path(self) -> str:
        """The infer endpoint's path."""
        return f"/v2/models/{self.model}/infer"

    async def infer(self, matrix: np.ndarray, columns: Sequence[str]) -> dict[str, np.ndarray]:
        """Score the rows of ``matrix`` (columns named ``columns``).

        Returns:
            Output name → 1-D array, each with one value per row.

        Raises:
            ModelCallError: timeout, transport error, non-200 or a malformed answer.
        """
        x = np.ascontiguousarray(matrix, dtype=np.float32)
        tensor: dict = {
            "name": "features",
            "shape": list(x.shape),
            "datatype": "FP32",
            "parameters": {"feature_names": list(columns)},
        }
        if self.binary:
            # Open Inference Protocol binary tensor extension: JSON header, then raw bytes
            tensor["parameters"]["binary_data_size"] = x.nbytes
            head = orjson.dumps({"inputs": [tensor]})
            body = head + x.astype("<f4", copy=False).tobytes()
            headers = {
                "Content-Type": "application/octet-stream",
                "Inference-Header-Content-Length": str(len(head)),
            }
        else:
            tensor["data"] = x.ravel()
            body = orjson.dumps({"inputs": [tensor]}, option=orjson.OPT_SERIALIZE_NUMPY)
            headers = {"Content-Type": "application/json"}
        start = time.perf_counter()
        ok = False
        try:
            status, content = await asyncio.wait_for(
                self.post(self.path, body, headers), self.timeout_s
            )
            if status != 200:
                text = content[:200].decode("utf-8", "replace")
                raise ModelCallError(self.model, f"HTTP {status}: {text}")
            out = _outputs(self.model, orjson.loads(content), x.shape[0])
            ok = True
            return out
        except TimeoutError as exc:
            raise ModelCallError(self.model, f"no answer within {self.timeout_s:.3f}s") from exc
        except (OSError, HttpPoolError, httpx.HTTPError) as exc:
            raise ModelCallError(self.model, f"{type(exc).__name__}: {exc}") from exc
        except orjson.JSONDecodeError as exc:
            raise ModelCallError(self.model, f"answer is not JSON: {exc}") from exc
        finally:
            if self.observe is not None:
                self.observe(self.model, time.perf_counter() - start, ok)


def _outputs(model: str, payload: object, n: int) -> dict[str, np.ndarray]:
    if not isinstance(payload, dict) or not isinstance(payload.get("outputs"), list):
        raise ModelCallError(model, "answer has no 'outputs' list")
    out: dict[str, np.ndarray] = {}
    for o in payload["outputs"]:
        try:
            arr = np.asarray(o["data"], dtype=np.float64).reshape(-1)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelCallError(model, f"malformed output: {exc}") from exc
        if arr.size != n:
            raise ModelCallError(model, f"output {o.get('name')!r} has {arr.size} values, not {n}")
        out[str(o.get("name"))] = arr
    return out


def httpx_post(
    client: httpx.AsyncClient, base_url: str
) -> Callable[[str, bytes, dict[str, str]], Awaitable[tuple[int, bytes]]]:
    """A ``post`` for :class:`ModelClient` over an httpx client (tests pass one with an
    in-process transport)."""

    async def post(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        resp = await client.post(f"{base_url.rstrip('/')}{path}", content=body, headers=headers)
        return resp.status_code, resp.content

    return post


def open_clients(
    poster: Callable[[str], Any],
    config: Any,
    observe: Callable[[str, float, bool], None],
    *,
    load_url: str,
    anomaly_url: str,
    agent_url: str,
) -> tuple[ModelClient | None, ModelClient | None, ModelClient | None]:
    """The load, anomaly and agent clients of one set of model servers (None where a URL
    is empty), with the extender's model names and timeouts (``config``: a ShimConfig).

    ``poster(url)`` gives a request function for one server: the champion's servers and
    an A/B test's challenger get their clients the same way.
    """

    def client(url: str, model: str, timeout_s: float) -> ModelClient | None:
        return ModelClient(poster(url), model, timeout_s, observe) if url else None

    return (
        client(load_url, config.load_model, config.model_timeout_s),
        client(anomaly_url, config.anomaly_model, config.model_timeout_s),
        client(agent_url, config.agent_model, config.agent_timeout_s),
    )
