"""``hydatis validate``: after a deployment, is it what was meant, and does it work?

Offline, then live:

1. **render** the overlay (``kubectl kustomize infra/overlays/<env>``);
2. **manifests**: every object checked (:mod:`operations.manifests`: schemas, namespaces,
   hardening, the scheduler's extender configuration and the extender's settings);
3. **nodes**: the live nodes, read through the ``kubernetes`` client (``GET
   /api/v1/nodes``, paged); the cordoned and not-Ready ones are left out, as
   kube-scheduler leaves them out before any extender;
4. **filter**: the ``ExtenderArgs`` kube-scheduler would send for a probe pod (whole
   ``Nodes`` or ``NodeNames``, as the configuration's ``nodeCacheCapable`` says) POSTed to
   the extender's filter verb: every node kept or failed exactly once, none invented,
   no ``Error``, answered within the scheduler's ``httpTimeout``;
5. **prioritize**: the kept nodes to the prioritize verb: one integer score in 0..10 per
   node, within ``httpTimeout``.

Nothing is written to the cluster: the probe pod exists only in the request. The
extender is reached at the configuration's ``urlPrefix`` (in the cluster), or at
``extender_url`` (a ``kubectl port-forward`` from outside).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hydatis.errors import ConfigError, HydatisError
from operations import _validate_extender as ext
from operations.manifests import (
    INFRA,
    ExtenderConfig,
    ManifestError,
    check_manifests,
    extender_config,
    render,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "Step",
    "ValidationReport",
    "connect",
    "list_nodes",
    "validate_deployment",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
_PAGE = 500


@dataclass
class Step:
    """One step of the validation.

    Attributes:
        name: ``render``, ``manifests``, ``nodes``, ``filter``, ``prioritize``.
        ok: whether it passed (None: not run, because an earlier step failed or live
            checks were not asked for).
        detail: what it found (counts, latency), or why it was not run.
        problems: what is wrong, one line each.
    """

    name: str
    ok: bool | None
    detail: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass
class ValidationReport:
    """Every step, in order, and what the extender answered."""

    overlay: str
    steps: list[Step]
    scores: dict[str, int] = field(default_factory=dict)
    failed_nodes: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No step failed (steps not run do not count as passed or failed)."""
        return all(s.ok is not False for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "overlay": self.overlay,
            "ok": self.ok,
            "steps": [asdict(s) for s in self.steps],
            "scores": self.scores,
            "failed_nodes": self.failed_nodes,
        }


def connect(kubeconfig: str | Path | None = None, kube_api: str | None = None) -> Any:
    """A ``kubernetes`` ``ApiClient``: from a kubeconfig file (its current context), an
    API URL (``kubectl proxy``), or ``incluster``.

    Raises:
        ConfigError: the kubeconfig is missing or unusable, or there is no service account.
    """
    import kubernetes

    cfg = kubernetes.client.Configuration()
    try:
        if kube_api == "incluster":
            kubernetes.config.load_incluster_config(client_configuration=cfg)
        elif kube_api:
            if not kube_api.startswith(("http://", "https://")):
                raise ConfigError(f"--kube-api: incluster or an http(s) URL, got {kube_api!r}")
            cfg.host = kube_api.rstrip("/")
        else:
            path = str(kubeconfig) if kubeconfig else None
            if path and not Path(path).is_file():
                raise ConfigError(f"--kubeconfig: no such file {path}")
            kubernetes.config.load_kube_config(config_file=path, client_configuration=cfg)
    except kubernetes.config.ConfigException as exc:
        raise ConfigError(f"cannot configure the Kubernetes client: {exc}") from exc
    return kubernetes.client.ApiClient(cfg)


def list_nodes(api_client: Any, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[dict[str, Any]]:
    """Every node as the API's JSON (paged, ``limit`` 500).

    Raises:
        HydatisError: the API answered an error or could not be reached (status and URL).
    """
    import kubernetes
    import urllib3

    core = kubernetes.client.CoreV1Api(api_client)
    host = api_client.configuration.host
    nodes: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": _PAGE, "_request_timeout": timeout_s}
        if token:
            kwargs["_continue"] = token
        try:
            resp = core.list_node(_preload_content=False, **kwargs)
        except kubernetes.client.ApiException as exc:
            raise HydatisError(
                f"listing nodes at {host} failed: HTTP {exc.status} {exc.reason}"
            ) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise HydatisError(f"cannot reach the Kubernetes API at {host}: {exc}") from exc
        body = json.loads(resp.data)
        nodes += body.get("items") or []
        token = (body.get("metadata") or {}).get("continue")
        if not token:
            return nodes


def _post(client: httpx.Client, url: str, body: dict[str, Any]) -> tuple[Any, float, str]:
    """(decoded answer or None, seconds, problem or '')."""
    t0 = time.perf_counter()
    try:
        resp = client.post(
            url, content=json.dumps(body), headers={"Content-Type": "application/json"}
        )
    except httpx.TimeoutException:
        return None, time.perf_counter() - t0, f"timeout after {client.timeout.read} s at {url}"
    except httpx.HTTPError as exc:
        return None, time.perf_counter() - t0, f"cannot reach {url}: {exc}"
    seconds = time.perf_counter() - t0
    if resp.status_code != 200:
        return None, seconds, f"HTTP {resp.status_code} from {url}: {resp.text[:200]}"
    try:
        return resp.json(), seconds, ""
    except ValueError:
        return None, seconds, f"{url} answered something that is not JSON"


def _call_verb(
    http: httpx.Client,
    report: ValidationReport,
    name: str,
    url: str,
    body: dict[str, Any],
    sent: str,
) -> tuple[Step, Any, float] | None:
    """POST one extender verb and add its step to ``report`` (``sent`` says what went
    out); (the step, still to be judged, the answer, seconds), or None when the call
    itself failed (the step then says why and the live check stops)."""
    answer, seconds, problem = _post(http, url, body)
    step = Step(name, False, f"{sent} → {url} in {seconds * 1000:.0f} ms")
    report.steps.append(step)
    if problem:
        step.problems.append(problem)
        return None
    return step, answer, seconds


def _late(seconds: float, config: ExtenderConfig) -> list[str]:
    """kube-scheduler drops an answer slower than its httpTimeout, however correct."""
    if seconds <= config.http_timeout_s:
        return []
    return [
        f"answered in {seconds:.3f} s, past kube-scheduler's httpTimeout "
        f"{config.http_timeout_s:g} s"
    ]


def _live(
    report: ValidationReport,
    config: ExtenderConfig,
    api_client: Any,
    http: httpx.Client,
    base_url: str,
    namespace: str,
    timeout_s: float,
) -> None:
    try:
        nodes = list_nodes(api_client, timeout_s)
    except HydatisError as exc:
        report.steps.append(Step("nodes", False, problems=[str(exc)]))
        return
    usable, left = ext.schedulable_nodes(nodes)
    names = [n["metadata"]["name"] for n in usable]
    left_text = (
        f"; left out: {', '.join(f'{n} ({why})' for n, why in left.items())}" if left else ""
    )
    node_step = Step(
        "nodes", bool(usable), f"{len(nodes)} nodes, {len(usable)} schedulable{left_text}"
    )
    if not usable:
        node_step.problems.append("no schedulable node to send")
    report.steps.append(node_step)
    if not usable:
        return
    pod = ext.probe_pod(config.scheduler_name, namespace)
    mode = "NodeNames" if config.node_cache_capable else "Nodes"
    body = ext.extender_args(pod, usable, node_cache_capable=config.node_cache_capable)
    url = f"{base_url}/{config.filter_verb}"
    called = _call_verb(http, report, "filter", url, body, f"{len(names)} nodes as {mode}")
    if called is None:
        return
    step, answer, seconds = called
    kept, failed, problems = ext.check_filter(
        names, answer, node_cache_capable=config.node_cache_capable
    )
    problems += _late(seconds, config)
    step.ok, step.problems = not problems, problems
    step.detail += f"; kept {len(kept)}, failed {len(failed)}"
    report.failed_nodes = failed
    if problems or not kept:
        if not kept:
            report.steps.append(Step("prioritize", None, "no node kept by the filter"))
        return
    kept_nodes = [n for n in usable if n["metadata"]["name"] in set(kept)]
    body = ext.extender_args(pod, kept_nodes, node_cache_capable=config.node_cache_capable)
    url = f"{base_url}/{config.prioritize_verb}"
    called = _call_verb(http, report, "prioritize", url, body, f"{len(kept)} nodes")
    if called is None:
        return
    step, answer, seconds = called
    scores, problems = ext.check_prioritize([n["metadata"]["name"] for n in kept_nodes], answer)
    problems += _late(seconds, config)
    step.ok, step.problems = not problems, problems
    if scores:
        values = sorted(scores.values())
        step.detail += f"; scores {values[0]}..{values[-1]}"
    report.scores = scores


def validate_deployment(
    overlay: str,
    *,
    api_client: Any | None = None,
    extender_url: str | None = None,
    ca_file: str | None = None,
    namespace: str = "default",
    infra: Path = INFRA,
    kubectl: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    http: httpx.Client | None = None,
    render_fn: Callable[..., list[dict[str, Any]]] = render,
) -> ValidationReport:
    """Validate a deployed overlay.

    Args:
        overlay: the overlay's name under ``infra/overlays`` (or a folder).
        api_client: a ``kubernetes`` ``ApiClient`` (:func:`connect`); None checks the
            manifests only.
        extender_url: where to reach the extender (default: the configured ``urlPrefix``).
        ca_file: CA bundle for an HTTPS extender.
        namespace: the probe pod's namespace (only in the request).
        infra, kubectl: where the overlays are and the kubectl to render them with.
        timeout_s: timeout of each API and extender request.
        http: the HTTP client for the extender (made and closed here when None).
        render_fn: how to render (``render`` by default).

    Returns:
        The report; ``report.ok`` is False when any step failed.
    """
    report = ValidationReport(str(overlay), [])
    try:
        docs = render_fn(overlay, infra=infra, kubectl=kubectl)
    except ManifestError as exc:
        report.steps.append(Step("render", False, problems=[str(exc)]))
        return report
    kinds = len({d.get("kind") for d in docs})
    report.steps.append(Step("render", True, f"{len(docs)} objects of {kinds} kinds"))
    problems = [str(p) for p in check_manifests(docs)]
    report.steps.append(Step("manifests", not problems, f"{len(docs)} objects checked", problems))
    try:
        config = extender_config(docs)
    except ConfigError as exc:
        report.steps.append(Step("filter", False, problems=[str(exc)]))
        return report
    if api_client is None:
        report.steps.append(Step("nodes", None, "live checks not asked for (no cluster)"))
        return report
    base_url = (extender_url or config.url_prefix).rstrip("/")
    own = http is None
    if http is None:
        http = httpx.Client(timeout=timeout_s, verify=ca_file or True)
    try:
        _live(report, config, api_client, http, base_url, namespace, timeout_s)
    finally:
        if own:
            http.close()
    return report
