"""The trial entry point: ``python -m katib.trial MODEL --param=value ...``.

Katib runs it in the trial's container with the suggested parameters substituted into
the command line; the local Optuna backend runs the same :func:`main` in-process. It
trains the model with those parameters on the *validation* split
(:mod:`katib.objectives`) and prints one ``name=value`` line per metric on stdout — the
format Katib's StdOut metrics collector parses (:data:`METRICS_FORMAT`, Katib's default
filter) and :func:`parse_metrics` reads back. Values are printed in fixed-point
notation, because that filter does not read an exponent.

Options besides the parameters (all ``--name=value``):

- ``--budget``: ``tiny``, ``small`` or ``full`` (default ``full``; see
  :data:`katib.objectives.BUDGETS`);
- ``--seed``: seeds the trainer (default 0);
- ``--repeats``: train with seeds ``seed, seed + 1, ...`` and average (default 1).

Exit status: 0 with the metrics printed; 1 when the objective is not a finite number
(nothing printed, so Katib records a failed trial); 2 on a bad command line.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from katib.objectives import BUDGET_NAMES, evaluate
from katib.spaces import MODELS, space

__all__ = ["METRICS_FORMAT", "format_metrics", "main", "parse_metrics", "trial_args"]

log = logging.getLogger(__name__)

#: Katib's default StdOut filter (pkg/metricscollector/v1beta1/common/const.go): group 1
#: the name, group 2 the value.
METRICS_FORMAT = r"([\w|-]+)\s*=\s*((-?\d+)(\.\d+)?)"
_METRIC_RE = re.compile(METRICS_FORMAT)
#: Decimals printed: enough to rank trials whose objectives differ in the 8th place.
DECIMALS = 8


def trial_args(
    model: str,
    texts: Mapping[str, str],
    *,
    budget: str = "full",
    seed: int = 0,
    repeats: int = 1,
) -> list[str]:
    """The entry point's arguments (after ``python -m katib.trial``) for parameter texts.

    The Katib manifests pass ``${trialParameters.<name>}`` placeholders as the texts, the
    local backend the suggested values, so both build one command line the same way.
    """
    sp = space(model)
    unknown = set(texts) - set(sp.parameters)
    if unknown:
        raise ValueError(f"{model}: unknown parameter(s) {sorted(unknown)}")
    args = [model, f"--budget={budget}", f"--seed={seed}"]
    if repeats != 1:
        args.append(f"--repeats={repeats}")
    args += [f"--{name}={texts[name]}" for name in sp.parameters if name in texts]
    return args


def format_metrics(metrics: Mapping[str, float], names: Sequence[str]) -> list[str]:
    """``name=value`` lines for the finite metrics among ``names``, in that order."""
    lines = []
    for name in names:
        value = metrics.get(name)
        if value is not None and math.isfinite(float(value)):
            lines.append(f"{name}={float(value):.{DECIMALS}f}")
    return lines


def parse_metrics(text: str) -> dict[str, float]:
    """Metrics from a trial's output, as Katib's StdOut collector reads them (every
    ``name=value`` match on every line; a later value of a name wins)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        for match in _METRIC_RE.finditer(line):
            out[match.group(1)] = float(match.group(2))
    return out


def _parser(model: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m katib.trial",
        description="Train a model with the given parameters on the validation split and "
        "print its metrics as name=value lines.",
    )
    p.add_argument("model", choices=MODELS)
    p.add_argument("--budget", choices=BUDGET_NAMES, default="full")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=1, choices=range(1, 11), metavar="1..10")
    if model in MODELS:
        group = p.add_argument_group(f"{model} parameters (all required)")
        for prm in space(model).params:
            group.add_argument(
                f"--{prm.name}", required=True, metavar="V", help=f"{prm.help} {prm.describe()}"
            )
    return p


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    data: Any = None,
    progress: Callable[[float, str], None] | None = None,
) -> int:
    """Run one trial; print its metrics to ``out`` (default stdout).

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
        out: where the ``name=value`` lines go.
        data: prepared data (:func:`katib.objectives.prepare`) for the same model,
            budget, seed and the validation split: lets an in-process caller read it once.
        progress: called with the trainer's fraction done and what it is doing.

    Returns:
        The exit status (see the module docstring).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    model = argv[0] if argv and argv[0] in MODELS else None
    parser = _parser(model)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on a bad command line; report it as 2
        return int(exc.code or 0)
    sp = space(args.model)
    texts = {prm.name: getattr(args, prm.name) for prm in sp.params}
    try:
        values = sp.parse(texts)
    except ValueError as exc:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"{parser.prog}: error: {exc}\n")
        return 2
    log.info("trial %s budget=%s seed=%d params %s", args.model, args.budget, args.seed, values)
    metrics = evaluate(
        args.model,
        sp.to_trainer(values),
        budget=args.budget,
        seed=args.seed,
        split="valid",
        repeats=args.repeats,
        data=data,
        progress=progress,
    )
    objective = metrics.get(sp.objective.metric, math.nan)
    if not math.isfinite(objective):
        log.error("trial %s: objective %s is %s", args.model, sp.objective.metric, objective)
        return 1
    stream = out if out is not None else sys.stdout
    for line in format_metrics(metrics, sp.metrics):
        print(line, file=stream)  # the trial's output: Katib's metrics collector reads it
    stream.flush()
    return 0


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    sys.exit(main())
