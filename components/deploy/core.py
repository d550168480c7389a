"""Pipeline step: deploy the registry's champions.

Always renders the InferenceServices of the champions (``serving.manifests``: the
champion's version resolved now, its artifacts' ``storageUri`` on the cluster) into
``inferenceservices.yaml``. Then, by target:

- ``render`` — nothing more (the file is what a GitOps repository or ``kubectl apply``
  takes);
- ``cluster`` — apply them through the Kubernetes API (the official ``kubernetes``
  client): for each, ``GET`` it; absent (404) → ``POST`` (create), present → ``PUT`` with
  its ``resourceVersion`` (replace), so a rerun converges instead of failing;
- ``local`` — restart the local model servers on the champions: stop the servers an
  earlier local deployment started (their process ids are in ``<work dir>/serving/
  local-deployment.json``), start one per champion on the default loopback ports
  (``serving.launch.DEFAULT_PORTS``) as background processes that outlive the pipeline
  step, wait until each answers ``/ready``, and record them. ``stop_local`` stops them.

A model without a champion is left out (and named in the result); with none at all there
is nothing to deploy.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from hydatis.config import work_dir
from hydatis.errors import ConfigError, HydatisError

__all__ = [
    "GROUP",
    "PLURAL",
    "TARGETS",
    "VERSION",
    "DeployError",
    "apply_inference_services",
    "champion_refs_available",
    "deploy",
    "local_state_path",
    "restart_local",
    "stop_local",
]

log = logging.getLogger(__name__)

TARGETS = ("render", "local", "cluster")
GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
STATE_FILE = "local-deployment.json"
READY_TIMEOUT_S = 120.0
_STOP_GRACE_S = 10.0
_ROOT = Path(__file__).resolve().parent.parent.parent  # the project tree the servers import


class DeployError(HydatisError):
    """A deployment could not be applied or started."""


def champion_refs_available(
    alias: str = "champion", *, tracking_uri: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The champions that exist, by kind, and why the others are missing."""
    from serving._registry import MODEL_NAMES, resolve_ref
    from serving.errors import ServingError

    refs: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for kind, name in MODEL_NAMES.items():
        try:
            refs[kind] = resolve_ref(name, alias=alias, tracking_uri=tracking_uri)
        except ServingError as exc:
            missing[kind] = str(exc)
    return refs, missing


# --------------------------------------------------------------------------- cluster


def apply_inference_services(
    docs: Sequence[Mapping[str, Any]], api_client: Any
) -> list[dict[str, str]]:
    """Create or replace each InferenceService through the Kubernetes API.

    Args:
        docs: rendered InferenceServices (``serving.manifests.render``).
        api_client: a ``kubernetes.client.ApiClient`` (its configuration names the API
            server and the credentials).

    Returns:
        One ``{"name", "namespace", "action"}`` per document (``created``/``replaced``).

    Raises:
        DeployError: the API server refused a request.
    """
    from kubernetes.client import CustomObjectsApi
    from kubernetes.client.exceptions import ApiException

    api = CustomObjectsApi(api_client)
    done = []
    for doc in docs:
        meta = doc["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        body = json.loads(json.dumps(doc))  # a copy the client may annotate
        try:
            try:
                current = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
                action = "created"
            else:
                version = (current.get("metadata") or {}).get("resourceVersion")
                if version:
                    body["metadata"]["resourceVersion"] = version
                api.replace_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body)
                action = "replaced"
        except ApiException as exc:
            raise DeployError(
                f"InferenceService {namespace}/{name}: the API server answered "
                f"{exc.status} {exc.reason}: {(exc.body or '')[:500]}"
            ) from exc
        log.info("InferenceService %s/%s %s", namespace, name, action)
        done.append({"name": name, "namespace": namespace, "action": action})
    return done


# --------------------------------------------------------------------------- local


def local_state_path(work: str | Path | None = None) -> Path:
    """``<work dir>/serving/local-deployment.json``: what the local deployment runs."""
    base = Path(work) if work is not None else work_dir()
    return base / "serving" / STATE_FILE


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_model_server(pid: int, module: str) -> bool:
    """Whether ``pid`` still runs ``python -m <module>`` (a recycled pid must not be
    signalled). Without /proc, the recorded pid is trusted."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():
        return _alive(pid)
    try:
        return module in cmdline.read_bytes().decode(errors="replace").split("\x00")
    except OSError:
        return False


def stop_local(
    state_file: str | Path | None = None, *, grace_s: float = _STOP_GRACE_S
) -> list[int]:
    """Stop the servers recorded in the local deployment's state file; return their pids.

    Only processes that still run the recorded server module are signalled (SIGTERM, then
    SIGKILL after ``grace_s``); the state file is removed.
    """
    path = Path(state_file) if state_file is not None else local_state_path()
    if not path.is_file():
        return []
    try:
        state = json.loads(path.read_text())
    except ValueError:
        state = {}
    stopped = []
    for server in (state.get("servers") or {}).values():
        pid, module = int(server.get("pid", 0)), str(server.get("module", ""))
        if pid > 0 and _is_model_server(pid, module):
            os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
    deadline = time.monotonic() + grace_s
    for pid in stopped:
        while _alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.1)
        if _alive(pid):
            log.warning("model server pid %d ignored SIGTERM; killing it", pid)
            os.kill(pid, signal.SIGKILL)
        _reap(pid)
    path.unlink(missing_ok=True)
    return stopped


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our child (a detached server started by this process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def restart_local(
    sources: Mapping[str, str],
    *,
    ports: Mapping[str, int] | None = None,
    state_file: str | Path | None = None,
    tracking_uri: str | None = None,
    log_dir: str | Path | None = None,
    timeout_s: float = READY_TIMEOUT_S,
    host: str = "127.0.0.1",
) -> dict[str, Any]:
    """Stop the previous local deployment and start one server per ``sources`` entry in
    the background; return the recorded state.

    Args:
        sources: kind -> a model directory or ``models:/`` URI (pin versions:
            ``models:/NAME/VERSION``).
        ports: kind -> port (default ``serving.launch.DEFAULT_PORTS``).
        state_file: where the deployment is recorded (default :func:`local_state_path`).
        tracking_uri: MLflow URI for ``models:/`` sources.
        log_dir: where the servers' logs go (default: beside the state file).
        timeout_s: how long the servers together may take to answer ``/ready``.
        host: the address they listen on.

    Raises:
        DeployError: a server exited or was not ready in time (the new servers are
            stopped again).
    """
    from serving._registry import MODEL_NAMES, MODULES, default_tracking_uri
    from serving.launch import DEFAULT_PORTS

    path = Path(state_file) if state_file is not None else local_state_path()
    stop_local(path)
    logs = Path(log_dir) if log_dir is not None else path.parent
    logs.mkdir(parents=True, exist_ok=True)
    uri = default_tracking_uri(tracking_uri)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow's artifact download resolves models:/ through the environment's registry.
    env["MLFLOW_TRACKING_URI"] = uri
    ports = {**DEFAULT_PORTS, **(ports or {})}
    servers: dict[str, dict[str, Any]] = {}
    for kind, source in sources.items():
        if kind not in MODULES:
            raise ConfigError(f"unknown model kind {kind!r}")
        name, port = MODEL_NAMES[kind], int(ports[kind])
        log_path = logs / f"{name}.log"
        argv = [
            sys.executable,
            "-m",
            MODULES[kind],
            "--model_source",
            str(source),
            "--model_name",
            name,
            "--http_port",
            str(port),
            "--host",
            host,
            "--tracking_uri",
            uri,
        ]
        with log_path.open("ab") as out:  # the server keeps its own descriptor
            proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # outlives the step that started it
            )
        servers[kind] = {
            "pid": proc.pid,
            "module": MODULES[kind],
            "url": f"http://{host}:{port}",
            "ready": f"http://{host}:{port}/v2/models/{name}/ready",
            "source": str(source),
            "log": str(log_path),
        }
    state = {"servers": servers, "started": time.time()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2))
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as client:
        for kind, server in servers.items():
            while True:
                if not _alive(server["pid"]) or _exited(server["pid"]):
                    stop_local(path)
                    raise DeployError(
                        f"the {kind} server ({server['source']}) exited; see {server['log']}"
                    )
                try:
                    if client.get(server["ready"]).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    stop_local(path)
                    raise DeployError(
                        f"the {kind} server was not ready at {server['ready']} in "
                        f"{timeout_s:.0f} s; see {server['log']}"
                    )
                time.sleep(0.2)
    return state


def _exited(pid: int) -> bool:
    """Whether our child ``pid`` has exited (reaping it)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == pid


# --------------------------------------------------------------------------- the step


def deploy(
    target: str = "render",
    *,
    out_dir: str | Path,
    alias: str = "champion",
    tracking_uri: str | None = None,
    storage_root: str | None = None,
    namespace: str | None = None,
    image_ref: str | None = None,
    api_client: Any = None,
    state_file: str | Path | None = None,
) -> dict[str, Any]:
    """Render the champions' InferenceServices into ``out_dir`` and deploy them to
    ``target`` (module docstring).

    Args:
        target: ``render``, ``local`` or ``cluster``.
        out_dir: where ``inferenceservices.yaml`` goes.
        alias: the registry alias deployed (``champion``).
        tracking_uri: the MLflow URI (default: the project's).
        storage_root: where versions' artifacts live on the cluster (default
            ``serving.manifests.DEFAULT_STORAGE_ROOT``).
        namespace: the namespace (default ``serving.manifests.NAMESPACE``).
        image_ref: the server image (default: the project image of this version).
        api_client: a ``kubernetes.client.ApiClient`` for ``cluster`` (default: from the
            in-cluster service account, else the kubeconfig).
        state_file: the local deployment's record (``local``).

    Returns:
        ``target``, ``manifests`` (the file), ``deployed`` (kind -> ``models:/NAME/VERSION``),
        ``missing`` (kind -> why), and ``applied`` (cluster) or ``servers`` (local).
    """
    from serving.manifests import DEFAULT_STORAGE_ROOT, NAMESPACE, render, write_manifests

    if target not in TARGETS:
        raise ConfigError(f"unknown deploy target {target!r}: use one of {', '.join(TARGETS)}")
    refs, missing = champion_refs_available(alias, tracking_uri=tracking_uri)
    docs = render(
        refs,
        storage_root=storage_root or DEFAULT_STORAGE_ROOT,
        image_ref=image_ref or None,
        namespace=namespace or NAMESPACE,
    )
    path = write_manifests(docs, out_dir)
    result: dict[str, Any] = {
        "target": target,
        "manifests": str(path),
        "deployed": {kind: ref.uri for kind, ref in refs.items()},
        "missing": missing,
    }
    if not refs:
        log.warning("deploy: no %s in the registry; nothing to deploy", alias)
        return result
    if target == "cluster":
        if api_client is None:
            from kubernetes import client, config

            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            api_client = client.ApiClient()
        result["applied"] = apply_inference_services(docs, api_client)
    elif target == "local":
        sources = {kind: ref.uri for kind, ref in refs.items()}
        state = restart_local(sources, state_file=state_file, tracking_uri=tracking_uri)
        result["servers"] = {kind: s["url"] for kind, s in state["servers"].items()}
    return result
