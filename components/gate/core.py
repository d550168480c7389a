"""Pipeline steps: register a trained and validated model behind its gate, and decide
whether anything is to be deployed.

:func:`register_bundle` hands the training (with its validation figures) to
:func:`components.register.register`: a new MLflow version that becomes ``champion`` only
if it meets every absolute target *and* beats the current champion on the same
validation data — the champion is re-evaluated on this run's validation part when it was
scored on other data. Otherwise it is ``challenger``, with the reason on the version.

:func:`gate_summary` reads the three outcomes: a deployment is needed when at least one
model was promoted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["gate_summary", "register_bundle"]


def _finite(metrics: Mapping[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def register_bundle(
    bundle_dir: str | Path,
    *,
    dataset_dir: str | Path | None = None,
    features_dir: str | Path | None = None,
    valid_share: float = 0.25,
    seed: int = 0,
    uri: str | None = None,
) -> dict[str, Any]:
    """Register the bundle's model and apply the gate.

    Args:
        bundle_dir: a validated bundle (``components.evaluate``).
        dataset_dir, features_dir, valid_share, seed: the validation data, to re-evaluate
            a champion that was scored elsewhere (None: no re-evaluation).
        uri: MLflow tracking/registry URI (default: the project's).

    Returns:
        ``kind, name, version, uri`` (``models:/NAME/VERSION``), ``alias``,
        ``promoted``, ``reason``, ``previous_champion``, ``run_id``, ``primary`` and
        ``value`` (the primary figure on the validation part).
    """
    from components.register import register
    from components.train import load_bundle

    result = load_bundle(bundle_dir)
    evaluate_champion = None
    if dataset_dir is not None:
        from components.evaluate import champion_evaluator

        evaluate_champion = champion_evaluator(
            result.name,
            dataset_dir,
            features_dir=features_dir,
            valid_share=valid_share,
            seed=seed,
        )
    outcome = register(result, uri=uri, evaluate_champion=evaluate_champion)
    return {
        "kind": result.name,
        "name": outcome.name,
        "version": outcome.version,
        "uri": f"models:/{outcome.name}/{outcome.version}",
        "alias": outcome.alias,
        "promoted": outcome.promoted,
        "reason": outcome.reason,
        "previous_champion": outcome.previous_champion,
        "run_id": outcome.run_id,
        "primary": result.primary,
        "value": _finite(result.metrics, result.primary),
        "targets": [
            {
                "target": str(t),
                "met": t.met(result.metrics),
                "value": _finite(result.metrics, t.metric),
            }
            for t in result.targets
        ],
    }


def gate_summary(outcomes: Sequence[Mapping[str, Any]]) -> tuple[bool, str]:
    """Whether any model was promoted, and a Markdown table of the outcomes."""
    lines = [
        "# Gate",
        "",
        "| model | version | alias | primary figure | reason |",
        "|---|---|---|---|---|",
    ]
    for o in outcomes:
        value = o.get("value")
        figure = f"{o.get('primary')} = {value:.4g}" if isinstance(value, float) else "–"
        lines.append(
            f"| {o.get('name')} | {o.get('version')} | {o.get('alias')} | {figure} "
            f"| {str(o.get('reason', '')).replace('|', '/')} |"
        )
    promoted = [o for o in outcomes if o.get("promoted")]
    lines += [
        "",
        f"{len(promoted)} of {len(outcomes)} promoted: "
        + ("deploy the new champions." if promoted else "nothing to deploy."),
    ]
    return bool(promoted), "\n".join(lines) + "\n"
