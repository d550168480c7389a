"""The extender's settings: file, environment, flags, and errors that name the key."""

from __future__ import annotations

import pytest

from hydatis.errors import ConfigError
from scheduler_shim.config import load_config


def test_defaults_run_on_one_machine():
    c = load_config(None)
    assert (c.host, c.port, c.source) == ("127.0.0.1", 8888, "push")
    assert (c.weights.load, c.weights.agent, c.weights.anomaly) == (0.8, 0.1, 0.1)
    assert c.redis_url is None and c.mode == "active" and c.rollout_percent == 100


def test_file_then_environment_then_flags(tmp_path, monkeypatch):
    f = tmp_path / "shim.yaml"
    f.write_text("port: 9000\nmode: shadow\nrollout_percent: 10\nweights: {agent: 0.0}\n")
    monkeypatch.setenv("HYDATIS_SHIM_ROLLOUT_PERCENT", "50")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    c = load_config(f, mode="active")
    assert c.port == 9000 and c.rollout_percent == 50 and c.mode == "active"
    assert c.weights.agent == 0.0 and c.weights.load == 0.8
    assert c.redis_url == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("prot: 9000\n", "prot"),
        ("rollout_percent: 150\n", "rollout_percent"),
        ("mode: loud\n", "mode"),
        ("target: 0.9\n", "hot_threshold"),
        ("weights: {load: 0, agent: 0, anomaly: 0}\n", "weight"),
        ("- a list\n", "mapping"),
        ("port: [\n", "YAML"),
    ],
    ids=[
        "typo",
        "out-of-range",
        "bad-choice",
        "target-above-hot",
        "zero-weights",
        "list",
        "bad-yaml",
    ],
)
def test_bad_settings_name_the_key_and_file(tmp_path, text, needle):
    f = tmp_path / "shim.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=needle) as err:
        load_config(f)
    assert str(f) in str(err.value)


def test_missing_file():
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config("does-not-exist.yaml")
