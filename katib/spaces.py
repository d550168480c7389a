"""The search spaces of the three models, read from ``spaces.yaml`` and validated.

One file defines what is tuned; the Katib manifests, the local Optuna backend and the
trial entry point are all derived from it, so a parameter cannot be searched by one
backend under a name or range the other does not know. Validation names the bad key
(pydantic), and the trainers' defaults are checked to lie inside each space.

Values travel between the three forms a parameter takes:

- the *space value* the search suggests (a categorical is a string such as ``"64x64"``),
- its *text*, as Katib substitutes it into the trial's command line (``--hidden=64x64``),
- the *trainer value* handed to the trainer's ``params`` (``[64, 64]``).
"""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hydatis.errors import ConfigError

__all__ = [
    "ALGORITHM_SETTINGS",
    "MODELS",
    "SPACES_FILE",
    "KatibSettings",
    "Objective",
    "Param",
    "Space",
    "load_spaces",
    "space",
]

SPACES_FILE = Path(__file__).with_name("spaces.yaml")
MODELS = ("load", "anomaly", "placement")
#: The settings Katib's suggestion services accept per algorithm (its validators reject
#: any other name, so a typo is caught here rather than by the Katib webhook).
ALGORITHM_SETTINGS: dict[str, frozenset[str]] = {
    "tpe": frozenset({"gamma", "prior_weight", "n_EI_candidates", "random_state"}),
    "bayesianoptimization": frozenset(
        {"base_estimator", "n_initial_points", "acq_func", "acq_optimizer", "random_state"}
    ),
    "random": frozenset({"random_state"}),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Param(_Strict):
    """One searched parameter.

    ``min``/``max`` bound a double or int (inclusive); ``choices`` list a categorical's
    values (strings, as Katib's ``feasibleSpace.list`` requires); ``decode`` names how a
    categorical string becomes the trainer's value (``layers``: ``"128x64"`` -> ``[128,
    64]``).
    """

    name: str = ""
    type: Literal["double", "int", "categorical"]
    min: float | None = None
    max: float | None = None
    log: bool = False
    choices: tuple[str, ...] = ()
    decode: Literal["layers"] | None = None
    help: str = ""

    @model_validator(mode="after")
    def _check(self) -> Param:
        if self.type == "categorical":
            if not self.choices or self.min is not None or self.max is not None or self.log:
                raise ValueError("a categorical takes choices only (no min, max or log)")
            if len(set(self.choices)) != len(self.choices):
                raise ValueError(f"repeated choices: {list(self.choices)}")
            if self.decode == "layers":
                for c in self.choices:
                    _layers(c)
            return self
        if self.choices or self.decode:
            raise ValueError(f"a {self.type} takes min and max, not choices or decode")
        if self.min is None or self.max is None or not self.min < self.max:
            raise ValueError(f"needs min < max, got min={self.min} max={self.max}")
        if self.type == "int" and (self.min != int(self.min) or self.max != int(self.max)):
            raise ValueError("an int's min and max must be whole numbers")
        if self.log and self.min <= 0:
            raise ValueError("a log-scale range must be positive")
        return self

    # -- the three forms ---------------------------------------------------------------

    def parse(self, text: str) -> Any:
        """The space value of ``text`` (a command-line value), checked against the space.

        Raises:
            ValueError: not of the parameter's type, or outside its range or choices.
        """
        if self.type == "int":
            number = float(text)
            if number != int(number):
                raise ValueError(f"{self.name}: not a whole number: {text!r}")
            value: Any = int(number)
        elif self.type == "double":
            value = float(text)
        else:
            value = str(text)
        if not self.contains(value):
            raise ValueError(f"{self.name}={text} is outside its space ({self.describe()})")
        return value

    def text(self, value: Any) -> str:
        """``value`` as a command-line string that :meth:`parse` reads back exactly."""
        if self.type == "int":
            return str(int(value))
        if self.type == "double":
            return repr(float(value))
        return str(value)

    def contains(self, value: Any) -> bool:
        """Whether a space value lies inside the space."""
        if self.type == "categorical":
            return value in self.choices
        try:
            number = float(value)
        except (TypeError, ValueError):
            return False
        if not math.isfinite(number):
            return False
        assert self.min is not None and self.max is not None
        return self.min <= number <= self.max

    def to_trainer(self, value: Any) -> Any:
        """The trainer's value of a space value."""
        if self.decode == "layers":
            return _layers(str(value))
        if self.type == "int":
            return int(value)
        if self.type == "double":
            return float(value)
        return value

    def from_trainer(self, value: Any) -> Any:
        """The space value of a trainer's value (the inverse of :meth:`to_trainer`)."""
        if self.decode == "layers":
            return "x".join(str(int(w)) for w in value)
        if self.type == "int":
            return int(value)
        if self.type == "double":
            return float(value)
        return str(value)

    def describe(self) -> str:
        """``[min, max]`` (``log``) or the choices, for messages and tables."""
        if self.type == "categorical":
            return "{" + ", ".join(self.choices) + "}"
        lo = int(self.min) if self.type == "int" else self.min  # type: ignore[arg-type]
        hi = int(self.max) if self.type == "int" else self.max  # type: ignore[arg-type]
        return f"[{lo}, {hi}]" + (" log" if self.log else "")


def _layers(text: str) -> list[int]:
    try:
        widths = [int(w) for w in text.split("x")]
    except ValueError as exc:
        raise ValueError(f"not layer widths like '64x64': {text!r}") from exc
    if not widths or any(w <= 0 for w in widths):
        raise ValueError(f"layer widths must be positive: {text!r}")
    return widths


class Objective(_Strict):
    """What a trial reports and the search optimises."""

    metric: str
    direction: Literal["minimize", "maximize"]
    goal: float | None = None
    additional: tuple[str, ...] = ()


class KatibSettings(_Strict):
    """How the Katib Experiment of a model runs."""

    algorithm: Literal["tpe", "bayesianoptimization", "random"]
    settings: dict[str, str] = Field(default_factory=dict)
    max_trials: int = Field(gt=0)
    parallel_trials: int = Field(gt=0)
    max_failed_trials: int = Field(ge=0)
    budget: str
    resources: dict[str, dict[str, str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> KatibSettings:
        unknown = set(self.settings) - ALGORITHM_SETTINGS[self.algorithm]
        if unknown:
            raise ValueError(f"unknown settings for {self.algorithm}: {sorted(unknown)}")
        if self.parallel_trials > self.max_trials:
            raise ValueError("parallel_trials exceeds max_trials")
        bad = set(self.resources) - {"requests", "limits"}
        if bad:
            raise ValueError(f"resources takes requests and limits, not {sorted(bad)}")
        return self


class Space(_Strict):
    """One model's search: objective, Katib settings and parameters (in file order)."""

    model: str = ""
    description: str = ""
    objective: Objective
    katib: KatibSettings
    parameters: dict[str, Param]

    @model_validator(mode="before")
    @classmethod
    def _name_params(cls, data: Any) -> Any:
        """Each parameter learns its name from its key (the file does not repeat it)."""
        params = data.get("parameters") if isinstance(data, dict) else None
        if isinstance(params, dict):
            for name, spec in params.items():
                if not str(name).isidentifier():
                    raise ValueError(f"parameter name {name!r} is not an identifier")
                if isinstance(spec, dict):
                    params[name] = {**spec, "name": name}
        return data

    @model_validator(mode="after")
    def _check(self) -> Space:
        if self.objective.metric in self.objective.additional:
            raise ValueError("the objective metric is listed among the additional ones")
        return self

    @property
    def params(self) -> list[Param]:
        """The parameters in file order."""
        return list(self.parameters.values())

    @property
    def maximize(self) -> bool:
        """True when a higher objective is better."""
        return self.objective.direction == "maximize"

    @property
    def metrics(self) -> list[str]:
        """Every metric a trial prints: the objective first."""
        return [self.objective.metric, *self.objective.additional]

    def parse(self, texts: dict[str, str]) -> dict[str, Any]:
        """Space values of command-line texts; every parameter must be given once.

        Raises:
            ValueError: a parameter is missing, unknown, or outside the space.
        """
        unknown = set(texts) - set(self.parameters)
        if unknown:
            raise ValueError(f"{self.model}: unknown parameter(s) {sorted(unknown)}")
        missing = [n for n in self.parameters if n not in texts]
        if missing:
            raise ValueError(f"{self.model}: missing parameter(s) {missing}")
        return {n: p.parse(texts[n]) for n, p in self.parameters.items()}

    def to_trainer(self, values: dict[str, Any]) -> dict[str, Any]:
        """The trainer's ``params`` overrides for a set of space values."""
        return {n: self.parameters[n].to_trainer(v) for n, v in values.items()}

    def defaults(self) -> dict[str, Any]:
        """The trainer's default of every parameter, as space values.

        Raises:
            ConfigError: a default lies outside the space (the space must contain the
                defaults, so the defaults are a point the search can compare against).
        """
        trainer = trainer_defaults(self.model)
        out = {}
        for name, p in self.parameters.items():
            if name not in trainer:
                raise ConfigError(f"{self.model}.{name}: the trainer has no such parameter")
            value = p.from_trainer(trainer[name])
            if not p.contains(value):
                raise ConfigError(
                    f"{self.model}.{name}: the trainer's default {value!r} lies outside the "
                    f"space {p.describe()}"
                )
            out[name] = value
        return out


def trainer_defaults(model: str) -> dict[str, Any]:
    """The defaults the trainer of ``model`` uses for the parameters it accepts."""
    if model == "load":
        from hydatis.models.load_predictor import LoadPredictor

        return LoadPredictor().get_params()
    if model == "anomaly":
        from components.train_anomaly import core as anomaly

        return dict(anomaly.DEFAULT_PARAMS)
    if model == "placement":
        from components.train_placement import core as placement

        return dict(placement.DEFAULT_PARAMS)
    raise ConfigError(f"unknown model {model!r}: use one of {', '.join(MODELS)}")


@cache
def _load(path: str) -> dict[str, Space]:
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{file}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping of model -> space")
    unknown = set(raw) - set(MODELS)
    if unknown:
        raise ConfigError(f"{file}: unknown model(s) {sorted(unknown)}; known: {MODELS}")
    spaces = {}
    for model in MODELS:
        if model not in raw:
            raise ConfigError(f"{file}: no space for {model}")
        try:
            spaces[model] = Space.model_validate({**raw[model], "model": model})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise ConfigError(f"{file}: {model}.{where}: {first['msg']}") from exc
    return spaces


def load_spaces(path: str | Path = SPACES_FILE) -> dict[str, Space]:
    """Every model's :class:`Space` from ``path`` (read once per path).

    Raises:
        ConfigError: unreadable file, unknown or missing model, or a bad key (named).
    """
    return _load(str(Path(path).resolve()))


def space(model: str, path: str | Path = SPACES_FILE) -> Space:
    """The :class:`Space` of one model.

    Raises:
        ConfigError: unknown model or bad file.
    """
    spaces = load_spaces(path)
    if model not in spaces:
        raise ConfigError(f"unknown model {model!r}: use one of {', '.join(MODELS)}")
    return spaces[model]
