"""Katib ``Experiment`` manifests (``kubeflow.org/v1beta1``) generated from the spaces.

One Experiment per model, built with the Katib SDK's V1beta1 models (and the Kubernetes
client's models for the trial Job), then serialised to YAML:

- ``objective``: the metric, direction and goal of ``spaces.yaml``, with the additional
  metrics the trial prints; every metric's strategy is ``latest`` (a trial prints each
  once, at its end);
- ``algorithm``: Katib's ``tpe`` (hyperopt) or ``bayesianoptimization`` (scikit-optimize)
  with the settings of ``spaces.yaml``;
- ``parameters``: one ``ParameterSpec`` per searched parameter. Katib's v1beta1
  ``FeasibleSpace`` before 0.18 has no ``distribution``, so a ``log: true`` range is
  sampled uniformly between the same bounds on a cluster (Optuna samples it on a log
  scale locally);
- ``trialTemplate``: a ``batch/v1`` Job running the trial entry point in the project
  image (``python -m katib.trial MODEL --budget=... --<param>=${trialParameters.<p>}``),
  the real traces mounted read-only from a PVC at ``/data`` (``HYDATIS_DATA_DIR``);
- ``metricsCollectorSpec``: ``StdOut`` with Katib's default filter, which is the format
  the entry point prints (``name=value``, fixed-point).

``katib/manifests/<model>.yaml`` holds the render with the defaults below; a unit test
compares the files with :func:`render` so they cannot drift from the spaces.
Regenerate: ``python -m katib.experiments`` (writes the three files).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from katib.spaces import MODELS, Param, Space, space
from katib.trial import METRICS_FORMAT, trial_args

__all__ = [
    "DATA_CLAIM",
    "MANIFEST_DIR",
    "NAMESPACE",
    "experiment",
    "experiment_name",
    "render",
    "to_yaml",
    "trial_parameter_name",
    "write_manifests",
]

API_VERSION = "kubeflow.org/v1beta1"
NAMESPACE = "hydatis-system"
MANIFEST_DIR = Path(__file__).with_name("manifests")
#: The PVC holding the public traces (read-only), mounted where HYDATIS_DATA_DIR points.
DATA_CLAIM = "hydatis-traces"
DATA_MOUNT = "/data"
CONTAINER = "trial"
RUN_AS = 10001  # the image's user (Dockerfile USER)
_HEADER = (
    "# Katib Experiment for the {model} model. Generated from katib/spaces.yaml by\n"
    "# `python -m katib.experiments`; do not edit by hand (a test compares the file with\n"
    "# the render). Needs: Katib (v1beta1 API) with the metrics-collector injection label\n"
    "# on the namespace, the project image, and the traces on the PVC {claim}.\n"
)


def experiment_name(model: str) -> str:
    """The Experiment's name: ``hydatis-tune-<model>``."""
    return f"hydatis-tune-{model}"


def trial_parameter_name(param: str) -> str:
    """The trial parameter's name: the search parameter in camelCase (Katib's examples'
    convention; ``learning_rate`` -> ``learningRate``)."""
    head, *rest = param.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _parameter_spec(p: Param) -> Any:
    from kubeflow.katib import V1beta1FeasibleSpace, V1beta1ParameterSpec

    if p.type == "categorical":
        feasible = V1beta1FeasibleSpace(list=list(p.choices))
    else:
        assert p.min is not None and p.max is not None
        lo, hi = (int(p.min), int(p.max)) if p.type == "int" else (p.min, p.max)
        feasible = V1beta1FeasibleSpace(min=str(lo), max=str(hi))
    return V1beta1ParameterSpec(name=p.name, parameter_type=p.type, feasible_space=feasible)


def _trial_job(sp: Space, *, image: str, budget: str, seed: int, data_claim: str) -> Any:
    from kubernetes import client as k8s

    placeholders = {
        p.name: f"${{trialParameters.{trial_parameter_name(p.name)}}}" for p in sp.params
    }
    command = [
        "python",
        "-m",
        "katib.trial",
        *trial_args(sp.model, placeholders, budget=budget, seed=seed),
    ]
    resources = sp.katib.resources
    container = k8s.V1Container(
        name=CONTAINER,
        image=image,
        image_pull_policy="IfNotPresent",
        command=command,
        env=[
            k8s.V1EnvVar(name="HYDATIS_DATA_DIR", value=DATA_MOUNT),
            # paths inside the trial container: an emptyDir
            k8s.V1EnvVar(name="HYDATIS_WORK_DIR", value="/tmp/hydatis"),  # nosec B108 an emptyDir
            k8s.V1EnvVar(name="HOME", value="/tmp"),  # nosec B108 an emptyDir
        ],
        resources=k8s.V1ResourceRequirements(
            requests=resources.get("requests"), limits=resources.get("limits")
        ),
        security_context=k8s.V1SecurityContext(
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
        ),
        volume_mounts=[
            k8s.V1VolumeMount(name="traces", mount_path=DATA_MOUNT, read_only=True),
            k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),  # nosec B108 an emptyDir
        ],
    )
    pod = k8s.V1PodSpec(
        restart_policy="Never",
        automount_service_account_token=False,
        security_context=k8s.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=RUN_AS,
            run_as_group=RUN_AS,
            fs_group=RUN_AS,
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
        containers=[container],
        volumes=[
            k8s.V1Volume(
                name="traces",
                persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
                    claim_name=data_claim, read_only=True
                ),
            ),
            k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource()),
        ],
    )
    labels = {
        "app.kubernetes.io/name": "hydatis-tuning",
        "app.kubernetes.io/component": sp.model,
        "app.kubernetes.io/part-of": "hydatis-ml-scheduler",
    }
    return k8s.V1Job(
        api_version="batch/v1",
        kind="Job",
        spec=k8s.V1JobSpec(
            backoff_limit=0,
            template=k8s.V1PodTemplateSpec(
                metadata=k8s.V1ObjectMeta(
                    labels=labels, annotations={"sidecar.istio.io/inject": "false"}
                ),
                spec=pod,
            ),
        ),
    )


def experiment(
    model: str,
    *,
    image: str | None = None,
    namespace: str = NAMESPACE,
    budget: str | None = None,
    seed: int = 0,
    max_trials: int | None = None,
    parallel_trials: int | None = None,
    data_claim: str = DATA_CLAIM,
) -> Any:
    """The Katib Experiment of ``model`` as a ``V1beta1Experiment``.

    Args:
        model: ``load``, ``anomaly`` or ``placement``.
        image: the trial image (default: the project image tagged with the package
            version, :data:`components._image.BASE_IMAGE`).
        namespace: where the Experiment and its trials run.
        budget: the trial budget (default: the space's ``katib.budget``).
        seed: the trainer's seed in every trial.
        max_trials: default: the space's ``katib.max_trials``.
        parallel_trials: default: the space's ``katib.parallel_trials``.
        data_claim: the PVC holding the traces.
    """
    from kubeflow.katib import (
        V1beta1AlgorithmSetting,
        V1beta1AlgorithmSpec,
        V1beta1CollectorSpec,
        V1beta1Experiment,
        V1beta1ExperimentSpec,
        V1beta1FilterSpec,
        V1beta1MetricsCollectorSpec,
        V1beta1MetricStrategy,
        V1beta1ObjectiveSpec,
        V1beta1SourceSpec,
        V1beta1TrialParameterSpec,
        V1beta1TrialTemplate,
    )
    from kubernetes import client as k8s

    if image is None:
        from components._image import BASE_IMAGE

        image = BASE_IMAGE
    sp = space(model)
    k = sp.katib
    objective = V1beta1ObjectiveSpec(
        type=sp.objective.direction,
        goal=sp.objective.goal,
        objective_metric_name=sp.objective.metric,
        additional_metric_names=list(sp.objective.additional) or None,
        metric_strategies=[V1beta1MetricStrategy(name=m, value="latest") for m in sp.metrics],
    )
    algorithm = V1beta1AlgorithmSpec(
        algorithm_name=k.algorithm,
        algorithm_settings=[V1beta1AlgorithmSetting(name=n, value=v) for n, v in k.settings.items()]
        or None,
    )
    template = V1beta1TrialTemplate(
        primary_container_name=CONTAINER,
        trial_parameters=[
            V1beta1TrialParameterSpec(
                name=trial_parameter_name(p.name),
                description=f"{p.help} {p.describe()}".strip(),
                reference=p.name,
            )
            for p in sp.params
        ],
        trial_spec=_trial_job(
            sp, image=image, budget=budget or k.budget, seed=seed, data_claim=data_claim
        ),
    )
    collector = V1beta1MetricsCollectorSpec(
        collector=V1beta1CollectorSpec(kind="StdOut"),
        source=V1beta1SourceSpec(filter=V1beta1FilterSpec(metrics_format=[METRICS_FORMAT])),
    )
    return V1beta1Experiment(
        api_version=API_VERSION,
        kind="Experiment",
        metadata=k8s.V1ObjectMeta(
            name=experiment_name(model),
            namespace=namespace,
            labels={
                "app.kubernetes.io/name": "hydatis-tuning",
                "app.kubernetes.io/component": model,
                "app.kubernetes.io/part-of": "hydatis-ml-scheduler",
            },
        ),
        spec=V1beta1ExperimentSpec(
            objective=objective,
            algorithm=algorithm,
            parallel_trial_count=parallel_trials or k.parallel_trials,
            max_trial_count=max_trials or k.max_trials,
            max_failed_trial_count=k.max_failed_trials,
            parameters=[_parameter_spec(p) for p in sp.params],
            trial_template=template,
            metrics_collector_spec=collector,
        ),
    )


def render(model: str, **kwargs: Any) -> dict[str, Any]:
    """The Experiment of ``model`` as a plain mapping, as it is applied to a cluster."""
    from kubeflow.katib import ApiClient

    return ApiClient().sanitize_for_serialization(experiment(model, **kwargs))


def to_yaml(model: str, doc: dict[str, Any]) -> str:
    """The YAML of one rendered Experiment, with its header comment."""
    header = _HEADER.format(model=model, claim=DATA_CLAIM)
    return header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def write_manifests(out_dir: str | Path = MANIFEST_DIR, **kwargs: Any) -> list[Path]:
    """Write ``<model>.yaml`` for every model into ``out_dir``; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for model in MODELS:
        path = out / f"{model}.yaml"
        path.write_text(to_yaml(model, render(model, **kwargs)))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """``python -m katib.experiments [--out DIR] [--image REF] [--namespace NS]``."""
    parser = argparse.ArgumentParser(description="Write the Katib Experiment manifests.")
    parser.add_argument("--out", type=Path, default=MANIFEST_DIR)
    parser.add_argument("--image", default=None, help="default: the project image")
    parser.add_argument("--namespace", default=NAMESPACE)
    args = parser.parse_args(argv)
    for path in write_manifests(args.out, image=args.image, namespace=args.namespace):
        sys.stderr.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
