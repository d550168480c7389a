"""Settings in layers, one mechanism for every service: defaults, a YAML file, the
environment, then explicit keywords (command-line flags).

Each service declares one pydantic-settings class (deriving :class:`LayeredSettings`, with
its own ``env_prefix``) and loads it with :func:`load_settings`. A missing or malformed
file, an unknown key or a bad value raises :class:`~hydatis.errors.ConfigError` naming the
key and the file, so a typo in a ConfigMap never silently falls back to a default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from hydatis.errors import ConfigError

__all__ = ["LayeredSettings", "load_settings", "read_yaml_mapping", "validation_problems"]

S = TypeVar("S", bound=BaseSettings)


class LayeredSettings(BaseSettings):
    """Keyword arguments win over the environment; :func:`load_settings` passes the file's
    values as keywords only for keys the environment and the flags leave unset."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, *_, **__):
        return (init_settings, env_settings)


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file that must hold a mapping (an empty file is an empty mapping).

    Raises:
        ConfigError: the file is missing or unreadable, not YAML, or not a mapping.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such configuration file") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def validation_problems(exc: ValidationError) -> str:
    """Every problem of a validation error, each as ``key: message``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(settings)'}: {err['msg']}"
        for err in exc.errors()
    )


def load_settings(
    cls: type[S],
    path: str | Path | None = None,
    *,
    label: str = "settings",
    env_fallbacks: Mapping[str, str] | None = None,
    **overrides: Any,
) -> S:
    """``cls`` from ``path`` (optional YAML), the environment and ``overrides``.

    Precedence, highest first: ``overrides`` that are not None (unset flags keep the lower
    layers), ``<env_prefix><KEY>`` variables, the file (a null there means the default),
    ``env_fallbacks`` (key → a shared variable such as ``REDIS_URL``, used only when no
    other layer sets the key), the class defaults.

    Raises:
        ConfigError: the file is missing or malformed, or a key is unknown or invalid.
    """
    prefix = str(cls.model_config.get("env_prefix", ""))
    file_values = read_yaml_mapping(path) if path is not None else {}
    given = {k: v for k, v in overrides.items() if v is not None}
    env_keys = (
        {k[len(prefix) :].lower() for k in os.environ if k.startswith(prefix)} if prefix else set()
    )
    values = {
        k: v
        for k, v in file_values.items()
        if v is not None and k not in env_keys and k not in given
    }
    values.update(given)
    for key, var in (env_fallbacks or {}).items():
        if key not in values and key not in env_keys and os.environ.get(var):
            values[key] = os.environ[var]
    try:
        return cls(**values)
    except ValidationError as exc:
        where = str(path) if path is not None else label
        raise ConfigError(f"{where}: {validation_problems(exc)}") from exc
