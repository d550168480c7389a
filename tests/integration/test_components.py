"""The pipeline components: each kfp wrapper compiles to the project image and runs the
installed project's plain function under kfp's local runner."""

# No "from __future__ import annotations": kfp reads the pipeline's annotations as types.
import importlib
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kfp import compiler, dsl, local

from hydatis.dataset import save_dataset
from tests.factories import make_dataset, ts

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

WRAPPERS = [
    ("components.extract.component", "extract_op"),
    ("components.validate.component", "validate"),
    ("components.build_features.component", "build_features_op"),
    ("components.materialize.component", "materialize_op"),
    ("components.train_load.component", "train_load_op"),
    ("components.train_anomaly.component", "train_anomaly_op"),
    ("components.train_placement.component", "train_placement_op"),
]


@pytest.mark.parametrize(("module", "name"), WRAPPERS, ids=[w[1] for w in WRAPPERS])
def test_component_compiles_to_the_project_image(tmp_path, module, name):
    component = getattr(importlib.import_module(module), name)
    path = tmp_path / f"{name}.yaml"
    compiler.Compiler().compile(component, str(path))
    text = path.read_text()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f"image: ghcr.io/hydatis/ml-scheduler:{version}" in text  # tag = package version
    assert "pip install" not in text  # runs the installed project, no install at start


def _history(tmp_path):
    times = np.arange(0, 4 * 3600, 60.0)
    rng = np.random.default_rng(0)
    ds = make_dataset([(8, 32), (16, 64)], [{"cpu": 1, "end": None}], horizon_s=times[-1])
    ds.pods["node"] = ["n0"]
    ds.node_metrics = pd.DataFrame(
        {
            "ts": ts(np.concatenate([times, times])),
            "node": ["n0"] * times.size + ["n1"] * times.size,
            "cpu_util": rng.uniform(0.1, 0.9, 2 * times.size),
            "mem_util": rng.uniform(0.2, 0.6, 2 * times.size),
        }
    )
    return save_dataset(ds, tmp_path / "history")


def test_validate_and_build_features_run_in_a_local_pipeline(tmp_path):
    from components.build_features.component import build_features_op
    from components.validate.component import validate

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "r"))

    @dsl.pipeline(name="features-check")
    def check(uri: str) -> int:
        data = dsl.importer(artifact_uri=uri, artifact_class=dsl.Dataset, reimport=False)
        validate(dataset=data.output)
        return build_features_op(dataset=data.output, horizon_s=300.0).outputs["Output"]

    run = check(uri=str(_history(tmp_path)))
    assert run.output == 2 * 240  # two nodes, every minute for 4 hours
