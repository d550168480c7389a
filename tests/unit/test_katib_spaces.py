"""The search spaces (katib/spaces.yaml): what the issue asks to tune, valid ranges that
contain the trainers' defaults, and exact round trips between a parameter's three forms
(space value, command-line text, trainer value)."""

from __future__ import annotations

import inspect
import math

import pytest
import yaml

from hydatis.errors import ConfigError
from katib import objectives
from katib.spaces import MODELS, SPACES_FILE, Param, load_spaces, space


@pytest.fixture(scope="module")
def spaces():
    return load_spaces()


def test_every_model_has_a_space(spaces):
    assert tuple(spaces) == MODELS == ("load", "anomaly", "placement")


@pytest.mark.parametrize(
    ("model", "must_tune"),
    [
        (
            "load",
            {
                "max_depth",
                "learning_rate",
                "n_estimators",
                "subsample",
                "colsample_bytree",
                "min_child_weight",
            },
        ),
        (
            "placement",
            {
                "learning_rate",
                "gamma",
                "epsilon_end",
                "epsilon_decay_episodes",
                "hidden",
                "replay_size",
                "target_sync",
            },
        ),
        (
            "anomaly",
            {
                "n_estimators",
                "max_samples",
                "contamination",
                "feature_fraction",
                "n_forests",
                "vote_threshold",
            },
        ),
    ],
    ids=["xgboost", "dqn", "iforest-ensemble"],
)
def test_space_covers_the_issue_parameters(spaces, model, must_tune):
    assert must_tune <= set(spaces[model].parameters)


def test_trial_counts_are_the_issue_defaults(spaces):
    counts = {m: s.katib.max_trials for m, s in spaces.items()}
    assert counts == {"load": 100, "anomaly": 80, "placement": 150}
    assert sum(counts.values()) == 330
    for s in spaces.values():
        assert 1 <= s.katib.parallel_trials <= s.katib.max_trials
        assert s.katib.algorithm in ("tpe", "bayesianoptimization")


@pytest.mark.parametrize("model", MODELS)
def test_trainer_defaults_lie_inside_the_space(model):
    sp = space(model)
    defaults = sp.defaults()
    assert set(defaults) == set(sp.parameters)
    assert all(sp.parameters[n].contains(v) for n, v in defaults.items())


@pytest.mark.parametrize("model", MODELS)
def test_objective_is_printed_first_and_budget_exists(model):
    sp = space(model)
    assert sp.metrics[0] == sp.objective.metric
    assert len(set(sp.metrics)) == len(sp.metrics)
    objectives.budget_of(model, sp.katib.budget)


def _cases():
    for model in MODELS:
        sp = space(model)
        defaults = sp.defaults()
        for p in sp.params:
            values = list(p.choices) if p.type == "categorical" else [p.min, p.max]
            values.append(defaults[p.name])
            for v in values:
                v = int(v) if p.type == "int" else v
                yield pytest.param(p, v, id=f"{model}.{p.name}={v}")


@pytest.mark.parametrize(("param", "value"), list(_cases()))
def test_text_parses_back_exactly(param, value):
    assert param.parse(param.text(value)) == value
    assert param.from_trainer(param.to_trainer(value)) == value


@pytest.mark.parametrize(
    ("model", "name", "text"),
    [
        ("load", "max_depth", "11"),  # above max
        ("load", "max_depth", "2"),  # below min
        ("load", "max_depth", "6.5"),  # not whole
        ("load", "learning_rate", "nan"),
        ("load", "learning_rate", "abc"),
        ("placement", "hidden", "64"),  # not a choice
        ("anomaly", "contamination", "0.5"),
    ],
    ids=["above-max", "below-min", "fractional-int", "nan", "not-a-number", "bad-choice", "big"],
)
def test_parse_rejects(model, name, text):
    with pytest.raises(ValueError):
        space(model).parameters[name].parse(text)


def test_katib_int_text_with_a_decimal_point_parses():
    # a suggestion service may render an int as "6.0"
    assert space("load").parameters["max_depth"].parse("6.0") == 6


def test_layers_decode_to_the_trainer_tuple_form():
    hidden = space("placement").parameters["hidden"]
    assert hidden.to_trainer("128x64") == [128, 64]
    assert hidden.from_trainer((64, 64)) == "64x64"


def test_space_parse_needs_every_parameter_once():
    sp = space("load")
    texts = {p.name: p.text(v) for p, v in zip(sp.params, sp.defaults().values(), strict=True)}
    assert sp.parse(texts) == sp.defaults()
    with pytest.raises(ValueError, match="missing"):
        sp.parse({k: v for k, v in texts.items() if k != "max_depth"})
    with pytest.raises(ValueError, match="unknown"):
        sp.parse({**texts, "eta": "0.1"})


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "categorical", "choices": ["a"], "min": 1},
        {"type": "categorical", "choices": []},
        {"type": "categorical", "choices": ["a", "a"]},
        {"type": "double", "min": 1.0, "max": 1.0},
        {"type": "double", "min": 0.0, "max": 1.0, "log": True},
        {"type": "int", "min": 0.5, "max": 3},
        {"type": "int", "min": 1, "max": 3, "choices": ["1"]},
        {"type": "categorical", "choices": ["64x"], "decode": "layers"},
        {"type": "double", "min": 0, "max": 1, "step": 0.1},
    ],
    ids=[
        "categorical-with-min",
        "no-choices",
        "repeated-choice",
        "empty-range",
        "log-from-zero",
        "fractional-int-bound",
        "int-with-choices",
        "bad-layers",
        "unknown-key",
    ],
)
def test_param_validation_rejects(spec):
    with pytest.raises(ValueError):
        Param.model_validate(spec)


def _write(tmp_path, mutate):
    raw = yaml.safe_load(SPACES_FILE.read_text())
    mutate(raw)
    path = tmp_path / "spaces.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["load"]["parameters"]["max_depth"].update(mx=3), "load.parameters.max_depth"),
        (lambda r: r["anomaly"]["katib"]["settings"].update(n_ei="5"), "anomaly.katib"),
        (lambda r: r.pop("placement"), "no space for placement"),
        (lambda r: r.update(extra=r["load"]), "unknown model"),
        (lambda r: r["load"]["objective"].update(direction="down"), "load.objective.direction"),
    ],
    ids=[
        "unknown-param-key",
        "unknown-algorithm-setting",
        "missing-model",
        "extra-model",
        "bad-direction",
    ],
)
def test_bad_file_names_the_key(tmp_path, mutate, message):
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError, match=message):
        load_spaces(path)


def test_default_outside_the_space_is_an_error(tmp_path):
    path = _write(tmp_path, lambda r: r["load"]["parameters"]["max_depth"].update(min=7))
    with pytest.raises(ConfigError, match="outside the space"):
        load_spaces(path)["load"].defaults()


def test_unknown_model_and_budget():
    with pytest.raises(ConfigError):
        space("scheduler")
    with pytest.raises(ConfigError):
        objectives.budget_of("load", "huge")


def test_test_share_is_the_load_trainers_default():
    from components.train_load import train_load

    assert inspect.signature(train_load).parameters["test_share"].default == objectives.TEST_SHARE


def test_full_budget_is_the_trainers_default():
    from components.train_load.core import MAX_TRAIN_ROWS
    from components.train_placement.core import DEFAULT_EPISODES, DEFAULT_NODES

    assert objectives.budget_of("load", "full").max_train_rows == MAX_TRAIN_ROWS
    assert objectives.budget_of("load", "full").max_vms is None
    full = objectives.budget_of("placement", "full")
    assert (full.nodes, full.episodes) == (DEFAULT_NODES, DEFAULT_EPISODES)
    assert objectives.budget_of("anomaly", "full").smd_entities is None


@pytest.mark.parametrize(
    ("precision", "recall", "expected"),
    [
        (1.0, 1.0, 1.0),
        (0.5, 0.5, 0.5),
        (0.94, 0.5, 2 * 0.94 * 0.5 / 1.44),
        (0.0, 0.0, 0.0),
        (math.nan, 0.0, 0.0),
        (0.3, math.nan, math.nan),
        (math.nan, 0.5, math.nan),
    ],
    ids=["perfect", "half", "targets", "all-wrong", "silent-detector", "no-events", "odd-nan"],
)
def test_event_f1(precision, recall, expected):
    got = objectives.event_f1(precision, recall)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_anomaly_goal_is_the_f1_of_the_targets():
    assert space("anomaly").objective.goal == pytest.approx(
        objectives.event_f1(0.94, 0.5), abs=0.005
    )
