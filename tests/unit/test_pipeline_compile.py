"""Every pipeline compiles to KFP IR YAML that the KFP SDK loads back, reproducibly, on
the project image of this package version, with the side-effect steps out of the cache."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from kfp import components

from pipelines import PIPELINES, compile_all, compile_pipeline, task_count

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("compiled")
    paths = compile_all(out)
    return {path.stem: path for path in paths}


def _spec(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def test_one_yaml_per_pipeline(compiled: dict[str, Path]) -> None:
    assert sorted(compiled) == ["hydatis-retraining", "hydatis-training"]
    for name, path in compiled.items():
        assert _spec(path)["pipelineInfo"]["name"] == name


@pytest.mark.parametrize("name", ["hydatis-training", "hydatis-retraining"])
def test_the_sdk_loads_the_yaml_back(compiled: dict[str, Path], name: str) -> None:
    loaded = components.load_component_from_file(str(compiled[name]))
    assert loaded.name == name
    assert "models" in loaded.component_spec.inputs
    again = components.load_component_from_text(compiled[name].read_text())
    assert again.component_spec.inputs.keys() == loaded.component_spec.inputs.keys()


@pytest.mark.parametrize("name", ["hydatis-training", "hydatis-retraining"])
def test_every_step_runs_the_project_image_of_this_version(
    compiled: dict[str, Path], name: str
) -> None:
    executors = _spec(compiled[name])["deploymentSpec"]["executors"]
    images = {e["container"]["image"] for e in executors.values() if "container" in e}
    assert images == {f"ghcr.io/hydatis/ml-scheduler:{VERSION}"}
    assert "pip install" not in compiled[name].read_text()


def test_compiling_twice_gives_the_same_bytes(tmp_path: Path, compiled: dict[str, Path]) -> None:
    for short in PIPELINES:
        path = compile_pipeline(short, tmp_path)
        assert path.read_bytes() == compiled[path.stem].read_bytes()


def test_no_path_of_this_machine_in_the_yaml(compiled: dict[str, Path]) -> None:
    for path in compiled.values():
        text = path.read_text()
        assert str(ROOT) not in text
        assert str(Path.home()) not in text or str(Path.home()) == "/"


def _leaf_tasks(spec: dict[str, Any], dag: dict[str, Any], items: int) -> int:
    """Executed tasks of a DAG: loops count once per item, conditions once."""
    count = 0
    for task in dag["tasks"].values():
        comp = spec["components"][task["componentRef"]["name"]]
        if "dag" in comp:
            times = items if "parameterIterator" in task else 1
            count += times * _leaf_tasks(spec, comp["dag"], items)
        else:
            count += 1
    return count


@pytest.mark.parametrize(
    ("short", "name"), [("training", "hydatis-training"), ("retraining", "hydatis-retraining")]
)
def test_task_count_matches_the_graph(compiled: dict[str, Path], short: str, name: str) -> None:
    spec = _spec(compiled[name])
    assert _leaf_tasks(spec, spec["root"]["dag"], 3) == task_count(short)
    assert _leaf_tasks(spec, spec["root"]["dag"], 1) == task_count(short, ["anomaly"])


def _tasks_by_component(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def walk(dag: dict[str, Any]) -> None:
        for task in dag["tasks"].values():
            comp_name = task["componentRef"]["name"]
            comp = spec["components"][comp_name]
            if "dag" in comp:
                walk(comp["dag"])
            else:
                found[comp_name] = task

    walk(spec["root"]["dag"])
    return found


@pytest.mark.parametrize("name", ["hydatis-training", "hydatis-retraining"])
def test_steps_that_act_on_the_world_never_come_from_the_cache(
    compiled: dict[str, Path], name: str
) -> None:
    tasks = _tasks_by_component(_spec(compiled[name]))
    for comp in ("comp-register-op", "comp-gate-op", "comp-deploy-op"):
        assert not tasks[comp].get("cachingOptions", {}).get("enableCache", False), comp
    assert tasks["comp-train-op"]["cachingOptions"]["enableCache"] is True


def test_training_runs_the_per_model_steps_in_a_parallel_loop(compiled: dict[str, Path]) -> None:
    spec = _spec(compiled["hydatis-training"])
    loops = [t for t in spec["root"]["dag"]["tasks"].values() if "parameterIterator" in t]
    assert len(loops) == 1
    body = spec["components"][loops[0]["componentRef"]["name"]]["dag"]["tasks"]
    assert {t["componentRef"]["name"] for t in body.values()} == {
        "comp-tune-op",
        "comp-train-op",
        "comp-evaluate-op",
        "comp-register-op",
    }
    assert loops[0]["iteratorPolicy"]["parallelismLimit"] == 3
    defaults = spec["root"]["inputDefinitions"]["parameters"]
    assert defaults["models"]["defaultValue"] == ["placement", "load", "anomaly"]
    assert defaults["deploy_target"]["defaultValue"] == "render"
