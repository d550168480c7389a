"""The Katib Experiment manifests: checked-in files equal the generator's render, every
document round-trips through the Katib SDK's V1beta1 models (no unknown or mistyped
field), the trial Job validates against the Kubernetes 1.30 schema, and the trial
command is what the entry point parses once Katib substitutes the parameters."""

from __future__ import annotations

import io
import json
import re

import kubernetes_validate
import pytest
import yaml

from components._image import IMAGE_REPOSITORY, package_version
from katib import experiments, trial
from katib.spaces import MODELS, space

K8S_VERSION = "1.30"
PLACEHOLDER = re.compile(r"\$\{trialParameters\.([A-Za-z0-9]+)\}")


@pytest.fixture(scope="module")
def docs():
    return {m: experiments.render(m) for m in MODELS}


@pytest.mark.parametrize("model", MODELS)
def test_checked_in_manifest_equals_the_render(model, docs):
    path = experiments.MANIFEST_DIR / f"{model}.yaml"
    assert path.read_text() == experiments.to_yaml(model, docs[model]), (
        f"{path} is stale: run `python -m katib.experiments`"
    )
    assert yaml.safe_load(path.read_text()) == docs[model]


class _Response:
    def __init__(self, doc):
        self.data = json.dumps(doc)


@pytest.mark.parametrize("model", MODELS)
def test_document_round_trips_through_the_katib_models(model, docs):
    from kubeflow.katib import ApiClient, V1beta1Experiment

    client = ApiClient()
    exp = client.deserialize(_Response(docs[model]), "V1beta1Experiment")
    assert isinstance(exp, V1beta1Experiment)
    assert client.sanitize_for_serialization(exp) == docs[model]  # nothing dropped or retyped


@pytest.mark.parametrize("model", MODELS)
def test_trial_job_validates_against_kubernetes(model, docs):
    job = docs[model]["spec"]["trialTemplate"]["trialSpec"]
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    assert job["kind"] == "Job" and job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_schema_check_catches_an_unknown_job_field(docs):
    job = json.loads(json.dumps(docs["load"]["spec"]["trialTemplate"]["trialSpec"]))
    job["spec"]["template"]["spec"]["containers"][0]["comand"] = ["x"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S_VERSION, strict=True)


@pytest.mark.parametrize("model", MODELS)
def test_experiment_fields_come_from_the_space(model, docs):
    sp = space(model)
    doc = docs[model]
    assert doc["apiVersion"] == "kubeflow.org/v1beta1" and doc["kind"] == "Experiment"
    assert doc["metadata"]["name"] == f"hydatis-tune-{model}"
    spec = doc["spec"]
    assert spec["objective"]["objectiveMetricName"] == sp.objective.metric
    assert spec["objective"]["type"] == sp.objective.direction
    assert spec["objective"].get("goal") == sp.objective.goal
    assert spec["objective"].get("additionalMetricNames", []) == list(sp.objective.additional)
    assert spec["algorithm"]["algorithmName"] == sp.katib.algorithm
    assert spec["maxTrialCount"] == sp.katib.max_trials
    assert spec["parallelTrialCount"] == sp.katib.parallel_trials
    assert spec["metricsCollectorSpec"]["collector"]["kind"] == "StdOut"
    assert spec["metricsCollectorSpec"]["source"]["filter"]["metricsFormat"] == [
        trial.METRICS_FORMAT
    ]
    by_name = {p["name"]: p for p in spec["parameters"]}
    assert list(by_name) == list(sp.parameters)
    for name, p in sp.parameters.items():
        got = by_name[name]
        assert got["parameterType"] == p.type
        if p.type == "categorical":
            assert got["feasibleSpace"]["list"] == list(p.choices)
        else:
            assert float(got["feasibleSpace"]["min"]) == p.min
            assert float(got["feasibleSpace"]["max"]) == p.max


@pytest.mark.parametrize("model", MODELS)
def test_trial_template_references_every_parameter_once(model, docs):
    template = docs[model]["spec"]["trialTemplate"]
    declared = {tp["name"]: tp["reference"] for tp in template["trialParameters"]}
    assert sorted(declared.values()) == sorted(space(model).parameters)
    (container,) = template["trialSpec"]["spec"]["template"]["spec"]["containers"]
    assert container["name"] == template["primaryContainerName"]
    used = PLACEHOLDER.findall(" ".join(container["command"]))
    assert sorted(used) == sorted(declared)  # each declared once, none undeclared


@pytest.mark.parametrize("model", MODELS)
def test_trial_runs_the_entry_point_in_the_project_image(model, docs):
    (container,) = docs[model]["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["image"] == f"{IMAGE_REPOSITORY}:{package_version()}"
    assert container["command"][:4] == ["python", "-m", "katib.trial", model]
    assert f"--budget={space(model).katib.budget}" in container["command"]
    env = {e["name"]: e["value"] for e in container["env"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts[env["HYDATIS_DATA_DIR"]]["readOnly"] is True
    assert container["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("model", MODELS)
def test_substituted_command_parses_in_the_entry_point(model, docs, monkeypatch):
    """What Katib does: replace each placeholder with the suggestion's text, run the
    command; the entry point must accept it (here with the defaults as the suggestion)."""
    sp = space(model)
    template = docs[model]["spec"]["trialTemplate"]
    ref = {tp["name"]: tp["reference"] for tp in template["trialParameters"]}
    defaults = sp.defaults()
    (container,) = template["trialSpec"]["spec"]["template"]["spec"]["containers"]
    argv = [
        PLACEHOLDER.sub(lambda m: sp.parameters[ref[m.group(1)]].text(defaults[ref[m.group(1)]]), a)
        for a in container["command"][3:]
    ]
    seen = {}

    def fake(model_, params, **kwargs):
        seen.update(params)
        return {sp.objective.metric: 0.5}

    monkeypatch.setattr(trial, "evaluate", fake)
    out = io.StringIO()
    assert trial.main(argv, out=out) == 0
    assert seen == sp.to_trainer(defaults)
    assert trial.parse_metrics(out.getvalue()) == {sp.objective.metric: 0.5}


def test_render_options_override_the_defaults():
    doc = experiments.render("load", image="reg/img:1", namespace="ns", max_trials=7, budget="tiny")
    assert doc["metadata"]["namespace"] == "ns" and doc["spec"]["maxTrialCount"] == 7
    (container,) = doc["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["image"] == "reg/img:1" and "--budget=tiny" in container["command"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("learning_rate", "learningRate"),
        ("gamma", "gamma"),
        ("epsilon_decay_episodes", "epsilonDecayEpisodes"),
    ],
)
def test_trial_parameter_name_is_camel_case(name, expected):
    assert experiments.trial_parameter_name(name) == expected


def test_write_manifests(tmp_path):
    paths = experiments.write_manifests(tmp_path)
    assert [p.name for p in paths] == ["load.yaml", "anomaly.yaml", "placement.yaml"]
    for p in paths:
        assert p.read_text() == (experiments.MANIFEST_DIR / p.name).read_text()
