"""InferenceService rendering: the committed infra file is the render, every field is one
KServe and Kubernetes know, versions and storage URIs come from the registry's refs, and
``hydatis serve manifests`` writes the same file."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml
from kserve.models import V1beta1PredictorSpec
from kubernetes.client import V1Container, V1PodSecurityContext, V1Probe

from cli import serve as serve_cli
from serving._registry import ModelRef
from serving.manifests import (
    DEFAULT_STORAGE_ROOT,
    MANIFEST_FILE,
    image,
    inference_service,
    package_version,
    placeholder_refs,
    render,
    to_yaml,
)

ROOT = Path(__file__).resolve().parents[2]
INFRA_FILE = ROOT / "infra" / "base" / MANIFEST_FILE
NAMES = {
    "load": ("hydatis-load-predictor", "serving.load_predictor"),
    "anomaly": ("hydatis-anomaly-detector", "serving.anomaly_detector"),
    "placement": ("hydatis-placement-agent", "serving.placement_agent"),
}


def test_infra_file_is_the_render():
    want = to_yaml(render(placeholder_refs()))
    assert INFRA_FILE.read_text() == want, (
        "infra/base/inferenceservices.yaml drifted from serving/manifests.py: regenerate it "
        "with `hydatis serve manifests --no-registry --out infra/base`"
    )


@pytest.mark.parametrize("kind", list(NAMES))
def test_inference_service_fields(kind):
    name, module = NAMES[kind]
    docs = [d for d in yaml.safe_load_all(INFRA_FILE.read_text()) if d]
    (doc,) = [d for d in docs if d["metadata"]["name"] == name]
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1" and doc["kind"] == "InferenceService"
    assert doc["metadata"]["namespace"] == "hydatis-system"
    predictor = doc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 10)
    assert predictor["scaleMetric"] == "cpu" and 0 < predictor["scaleTarget"] <= 100
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"
    assert container["image"] == f"ghcr.io/hydatis/ml-scheduler:{package_version()}" == image()
    assert container["command"] == ["python", "-m", module]
    args = container["args"]
    assert args[args.index("--model_source") + 1] == "/mnt/models"
    assert args[args.index("--model_name") + 1] == name
    storage = f"{DEFAULT_STORAGE_ROOT}/{name}/champion"
    assert container["env"] == [{"name": "STORAGE_URI", "value": storage}]
    assert doc["metadata"]["annotations"]["hydatis.io/storage-uri"] == storage
    assert container["readinessProbe"]["httpGet"]["path"] == f"/v2/models/{name}/ready"
    resources = container["resources"]
    assert set(resources) == {"requests", "limits"}
    assert all(set(resources[k]) == {"cpu", "memory"} for k in resources)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("kind", list(NAMES))
def test_every_field_is_one_kserve_and_kubernetes_know(kind):
    """A misspelt field (scaleMetrics, readinessprobe) would be dropped by the API server."""
    predictor = render(placeholder_refs())[list(NAMES).index(kind)]["spec"]["predictor"]
    assert set(predictor) <= set(V1beta1PredictorSpec.attribute_map.values())
    assert set(predictor["securityContext"]) <= set(V1PodSecurityContext.attribute_map.values())
    (container,) = predictor["containers"]
    assert set(container) <= set(V1Container.attribute_map.values())
    assert set(container["readinessProbe"]) <= set(V1Probe.attribute_map.values())


@pytest.mark.parametrize(
    ("root", "ref", "storage"),
    [
        (
            "s3://models/",
            ModelRef("hydatis-load-predictor", "7", "abc123", "champion", "x"),
            "s3://models/hydatis-load-predictor/7",
        ),
        (
            "pvc://hydatis-models",
            ModelRef("hydatis-load-predictor", "3", "", None, ""),
            "pvc://hydatis-models/hydatis-load-predictor/3",
        ),
    ],
    ids=["registry-version-trailing-slash", "version-without-run"],
)
def test_a_registry_version_is_recorded(root, ref, storage):
    doc = inference_service("load", ref, storage_root=root, image_ref="img:1")
    meta = doc["metadata"]
    assert meta["labels"]["hydatis.io/model-version"] == ref.version
    assert meta["annotations"]["hydatis.io/model-version"] == ref.version
    assert meta["annotations"].get("hydatis.io/run-id") == (ref.run_id or None)
    assert meta["annotations"].get("hydatis.io/registry-alias") == ref.alias
    (container,) = doc["spec"]["predictor"]["containers"]
    assert container["env"][0]["value"] == storage and container["image"] == "img:1"
    assert "models:/" not in yaml.safe_dump(doc)  # KServe is never handed a registry URI


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hydatis")
    serve_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_writes_the_infra_file(tmp_path, capsys):
    args = _parse(["serve", "manifests", "--out", str(tmp_path), "--no-registry"])
    assert args.func(args) == 0
    assert (tmp_path / MANIFEST_FILE).read_text() == INFRA_FILE.read_text()
    assert "hydatis-placement-agent: version champion" in capsys.readouterr().out


def test_cli_options_before_and_after_the_action():
    args = _parse(["serve", "--alias", "challenger", "manifests", "--out", "x"])
    assert (args.alias, args.registry, args.serve_action) == ("challenger", None, "manifests")
    args = _parse(["serve", "manifests", "--out", "x", "--registry", "sqlite:///r.db"])
    assert (args.alias, args.registry) == ("champion", "sqlite:///r.db")
    args = _parse(["serve", "--placement-model", "m/agent", "--load-port", "0"])
    assert (args.serve_action, args.placement_model, args.load_port) == (None, "m/agent", 0)
