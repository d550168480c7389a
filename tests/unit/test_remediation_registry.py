"""Rolling a model back to its previous champion in a real (local, SQLite) MLflow registry.

One registry for the module (creating MLflow's tables takes seconds); each test registers
a model of its own name."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitoring.remediation.actions import ModelRollback
from monitoring.remediation.config import RemediationConfig

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402


@pytest.fixture(scope="module")
def uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    return "m-" + "".join(ch if ch.isalnum() else "-" for ch in request.node.name)


def registry(
    uri: str, name: str, tmp_path: Path, gates: list[str | None], champion: int
) -> MlflowClient:
    """Versions 1..n of ``name`` with the given ``gate`` tags; ``champion`` holds the alias."""
    client = MlflowClient(uri, uri)
    client.create_registered_model(name)
    for i, gate in enumerate(gates, 1):
        source = tmp_path / f"v{i}"
        source.mkdir()
        version = client.create_model_version(name, source=str(source))
        assert str(version.version) == str(i)
        if gate:
            client.set_model_version_tag(name, str(i), "gate", gate)
    client.set_registered_model_alias(name, "champion", str(champion))
    return client


def rollback(uri: str, tmp_path: Path) -> ModelRollback:
    cfg = RemediationConfig(audit_log=tmp_path / "a.jsonl", mlflow_tracking_uri=uri)
    return ModelRollback(cfg, clock=lambda: 1_700_000_000.0)


def champion(client: MlflowClient, name: str) -> str:
    return str(client.get_model_version_by_alias(name, "champion").version)


def test_rollback_moves_the_alias_to_the_previous_passed_version(uri, name, tmp_path) -> None:
    # 1 passed, 2 failed its gate (a challenger), 3 passed (the champion)
    client = registry(uri, name, tmp_path, ["passed", "failed", "passed"], champion=3)
    dry = rollback(uri, tmp_path).run(name, "HydatisLoadPredictorAccuracyLow", dry_run=True)
    assert (dry.result, dry.details) == ("dry_run", {"from_version": "3", "to_version": "1"})
    assert champion(client, name) == "3"
    done = rollback(uri, tmp_path).run(name, "HydatisLoadPredictorAccuracyLow", dry_run=False)
    assert done.result == "done"
    assert done.reason == "champion moved from version 3 to 1"
    assert champion(client, name) == "1"
    tag = client.get_model_version(name, "3").tags["rolled_back"]
    assert tag == "2023-11-14T22:13:20Z: HydatisLoadPredictorAccuracyLow"


def test_a_rolled_back_version_is_never_chosen_again(uri, name, tmp_path) -> None:
    client = registry(uri, name, tmp_path, ["passed", "passed", "passed"], champion=3)
    rollback(uri, tmp_path).run(name, "x", dry_run=False)
    assert champion(client, name) == "2"
    client.set_registered_model_alias(name, "champion", "3")  # someone promotes 3 again
    rollback(uri, tmp_path).run(name, "x", dry_run=False)
    assert champion(client, name) == "2"
    client.set_model_version_tag(name, "2", "rolled_back", "by hand")
    rollback(uri, tmp_path).run(name, "x", dry_run=False)
    assert champion(client, name) == "1"


@pytest.mark.parametrize(
    ("gates", "champ", "reason"),
    [(["failed", "passed"], 2, "before 2 passed its gate"), (["passed"], 1, "before 1 passed")],
    ids=["only-failed-before", "first-version"],
)
def test_nothing_to_roll_back_to_is_refused(uri, name, tmp_path, gates, champ, reason) -> None:
    client = registry(uri, name, tmp_path, gates, champion=champ)
    out = rollback(uri, tmp_path).run(name, "x", dry_run=False)
    assert out.result == "refused"
    assert out.reason.startswith(f"no version of {name} {reason}")
    assert champion(client, name) == str(champ)


def test_a_model_without_a_champion_is_refused(uri, tmp_path) -> None:
    out = rollback(uri, tmp_path).run("hydatis-unknown-model", "x", dry_run=False)
    assert (out.result, out.reason) == ("refused", "hydatis-unknown-model has no champion")
