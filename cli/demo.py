"""``hydatis demo --out DIR``: the main job, end to end on this machine.

1. The training pipeline runs locally (``kfp.local``) on the default trace — the real
   composite trace when the data directory exists, else the embedded synthetic default —
   with small search and training budgets: the trace's first ``--history`` seconds are
   the cluster's history; the models train on its first ``1 − valid_share`` and are
   validated and gated on the rest.
2. The three model servers start on the versions this run registered, and the extender
   in front of them (``cli.ml_stack``).
3. The rest of the trace — the *held-out* part, which no training, tuning or validation
   read — is replayed by the simulator with the ML scheduler (kube-scheduler's default
   plugins + the extender over HTTP) and every baseline, with one seed. The hour before
   it is replayed too, only to fill the cluster; it is not measured.
4. ``DIR`` gets ``results.json`` (the figures per scheduler, ``ml`` included),
   ``run.json`` (the context, the split, the models) and ``report.html`` (plots, tables,
   the models' evaluation tables, what each number means); the summary is printed.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from hydatis.errors import HydatisError

__all__ = ["DEMO_DEFAULTS", "WARMUP_S", "add_parser", "run"]

#: The demo's trace, split and budgets: a 200-node sample of the composite trace at the
#: load where hot nodes exist, 24 h of which 16 h are history (12 h train, 4 h
#: validation) and 8 h held out; three search trials per model, quick trainings.
DEMO_DEFAULTS: dict[str, Any] = {
    "nodes": 200,
    "load_factor": 1.3,
    "usage_scale": 1.5,
    "horizon_s": 86400.0,
    "history_s": 57600.0,
    "valid_share": 0.25,
    "tune_trials": 3,
    "tune_budget": "tiny",
    "train_budget": "quick",
}
#: The replay of the held-out part starts this long before it, to fill the cluster.
WARMUP_S = 3600.0
BASELINES = ("default", "tlp", "lvrb", "koordinator", "crane", "random")

#: What each column of the comparison means (the report's glossary).
GLOSSARY: dict[str, str] = {
    "mean_cpu": "mean node CPU utilisation over node-time; the workload fixes it, a "
    "scheduler does not change it much",
    "p95_cpu": "95th percentile of node CPU utilisation over node-time",
    "hot_share": "share of node-time with CPU above 0.85 (hot spots); lower is better",
    "target_band_share": "share of node-time with CPU within 0.65 ± 0.05 (well packed, not hot)",
    "spread": "standard deviation of CPU across nodes, averaged over time (balance)",
    "objective": "placement objective: mean over node-time of max(0, CPU − 0.65), the CPU "
    "above the target; lower is better. Improvement of A over B = 1 − objective(A) / "
    "objective(B)",
    "availability": "1 − impacted / alive pod-time; a pod is impacted while pending past "
    "60 s, on a node whose CPU demand exceeds capacity, or evicted for memory",
    "impacted_pending": "share of pod-time pending longer than 60 s",
    "impacted_cpu": "share of pod-time on a node whose CPU demand exceeds its capacity",
    "impacted_oom": "share of pod-time lost to out-of-memory evictions (until placed again)",
    "pending_p95_s": "95th percentile of the time pods waited to be placed (s)",
    "evictions": "pods evicted because their node ran out of memory",
    "never_placed": "pods that never found a node within the replay",
    "latency_p50_ms": "median time of one scheduling decision (ms); for ml it includes "
    "the extender's two HTTP calls",
    "latency_p99_ms": "99th percentile of the decision time (ms)",
}


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``hydatis demo``; the caller sets ``func`` to :func:`run`."""
    from cli.pipeline import add_trace_arguments

    p = sub.add_parser(
        "demo",
        help="the main job: training pipeline, model servers, held-out replay, report",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output directory")
    p.add_argument(
        "--schedulers",
        default=",".join(BASELINES),
        help="baselines replayed beside the ML scheduler (comma-separated)",
    )
    add_trace_arguments(p, defaults=DEMO_DEFAULTS)
    return p


# --------------------------------------------------------------------------- report


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.4g}"
    return html.escape(str(value))


def _frame_html(frame: Any) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def _markdown_html(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(text)


def _validation_section(report: str) -> str:
    """The ``## Validation`` section of a registered version's report."""
    start = report.find("## Validation")
    return report[start:] if start >= 0 else report


def _model_reports(outcomes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each registered version's report and evaluation table, read back from MLflow."""
    import tempfile

    import mlflow.artifacts
    import pandas as pd

    from components.register import tracking_uri

    uri = tracking_uri()
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="hydatis-demo-") as tmp:
        for o in outcomes:
            got: dict[str, Any] = {}
            for name in ("report.md", "evaluation.csv"):
                try:
                    path = mlflow.artifacts.download_artifacts(
                        run_id=o["run_id"], artifact_path=name, dst_path=tmp, tracking_uri=uri
                    )
                except Exception as exc:  # MLflow raises many kinds; the report says so
                    got[name] = f"(not available: {exc})"
                    continue
                got[name] = pd.read_csv(path) if name.endswith(".csv") else Path(path).read_text()
            out[o["kind"]] = got
    return out


def _split_rows(info: dict[str, Any]) -> list[tuple[str, str, str]]:
    h = info["horizon_s"] / 3600
    hist = info["history_s"] / 3600
    cut = hist * (1.0 - info["valid_share"])
    warm = WARMUP_S / 3600
    return [
        (
            "training",
            f"[0 h, {cut:g} h)",
            "the models train here (each trainer splits it "
            "again inside: early stopping, its own held-out tail)",
        ),
        (
            "validation",
            f"[{cut:g} h, {hist:g} h)",
            "scored beside the baselines; the gate reads these figures",
        ),
        (
            "warm-up",
            f"[{hist - warm:g} h, {hist:g} h)",
            "replayed only to fill the cluster before the held-out part; not measured",
        ),
        (
            "held-out",
            f"[{hist:g} h, {h:g} h)",
            "this comparison: never read by training, tuning or validation",
        ),
    ]


def _summary_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    """What the ML scheduler did against the baselines, in a few sentences."""
    if "ml" not in results:
        return []
    ml = results["ml"]
    others = {k: v for k, v in results.items() if k != "ml"}
    lines = []
    for key, label, lower in (
        ("objective", "placement objective", True),
        ("hot_share", "hot node-time", True),
        ("availability", "availability", False),
    ):
        best_name = (min if lower else max)(others, key=lambda n: others[n][key])
        best = others[best_name][key]
        better = ml[key] < best if lower else ml[key] > best
        lines.append(
            f"{label}: ml {ml[key]:.4g} vs best baseline {best_name} {best:.4g} "
            f"({'better' if better else 'not better'})"
        )
    rnd = others.get("random")
    if rnd and rnd["objective"] > 0:
        lines.append(
            f"improvement over random on the objective: "
            f"{100 * (1 - ml['objective'] / rnd['objective']):+.1f} %"
        )
    return lines


def _augment_html(
    path: Path,
    *,
    info: dict[str, Any],
    outcomes: list[dict[str, Any]],
    reports: dict[str, dict[str, Any]],
    results: dict[str, dict[str, Any]],
    stack: dict[str, Any],
) -> None:
    """Add the demo's sections to the simulator's ``report.html``: how the run was made
    (the split), the models served and their gate, the summary, the models' evaluation
    tables and the glossary."""
    from simulator.metrics import METRIC_LABELS

    split = "".join(
        f"<tr><th>{html.escape(a)}</th><td>{html.escape(b)}</td><td style='text-align:left'>"
        f"{html.escape(c)}</td></tr>"
        for a, b, c in _split_rows(info)
    )
    models = "".join(
        f"<tr><th>{html.escape(o['name'])}</th><td>{html.escape(str(o['version']))}</td>"
        f"<td>{html.escape(o['alias'])}</td><td style='text-align:left'>"
        f"{html.escape(o['reason'])}</td><td>{html.escape(stack['sources'].get(o['kind'], ''))}"
        "</td></tr>"
        for o in outcomes
    )
    evaluation = []
    for o in outcomes:
        rep = reports.get(o["kind"], {})
        text = rep.get("report.md", "")
        title = f"{o['name']} version {o['version']}"
        evaluation.append(f"<h3>{html.escape(title)}</h3>")
        if isinstance(text, str) and text.startswith("("):
            evaluation.append(f"<p>{html.escape(text)}</p>")
        elif text:
            evaluation.append(_markdown_html(_validation_section(text)))
    glossary = "".join(
        f"<tr><th>{html.escape(METRIC_LABELS[k][0])}</th><td style='text-align:left'>"
        f"{html.escape(GLOSSARY.get(k, ''))}</td></tr>"
        for k in METRIC_LABELS
    )
    summary = "".join(f"<li>{html.escape(line)}</li>" for line in _summary_lines(results))
    tuning = "".join(
        f"<li>{html.escape(line)}</li>"
        for line in (
            "load predictor: the search reads the public Alibaba v2018 and Bitbrains node "
            "series (not this trace), the first 80 % of each; the composite trace draws its "
            "pods' usage shapes from those Bitbrains VMs, rescaled, so raw VM samples the "
            "search read can reappear, summed into node totals, in the held-out part",
            "anomaly detector: the search reads the SMD and ASD labelled server metrics",
            "placement agent: the search replays its own small samples of the trace source "
            "over their first hours only — before the held-out part's time of day",
            "without a data directory the load and anomaly searches are skipped (defaults)",
        )
    )
    extra = f"""
<h2>How this run was made</h2>
<p>{html.escape(info["description"])}. The training pipeline
(<code>hydatis-training</code>, run locally with <code>kfp.local</code>) took the trace's
first {info["history_s"] / 3600:g} h as the cluster's history; the models below were trained,
validated and registered by it; the model servers and the extender then served them, and
the simulator replayed the rest of the trace with the ML scheduler and every baseline
(seed {info["seed"]}).</p>
<table><tr><th>part</th><th>trace time</th><th>used for</th></tr>{split}</table>
<p>Tuning searches on its own data (<code>katib/objectives.py</code>), never on this
trace's held-out part:</p><ul>{tuning}</ul>
<h2>The ML scheduler</h2>
<p>kube-scheduler's default plugins plus the HYDATIS extender over HTTP (weight 5,
node-cache-capable, ignorable), the extender calling the three model servers. The models it
served are this run's registered versions, whatever the gate decided:</p>
<table><tr><th>model</th><th>version</th><th>alias</th><th>gate</th><th>served</th></tr>{models}</table>
<h2>Summary</h2><ul>{summary}</ul>
<h2>The models' evaluation (validation part of the history)</h2>
{"".join(evaluation)}
<h2>What each number means</h2>
<table>{glossary}</table>
<p>Figures are measured over the held-out part only (after the warm-up). A fixed workload
on a fixed cluster has a fixed mean utilisation: what a scheduler changes is where the load
lands.</p>
"""
    page = path.read_text()
    path.write_text(page.replace("</body>", extra + "</body>", 1))


# --------------------------------------------------------------------------- the job


def _baselines(text: str) -> list[str]:
    from simulator.schedulers import BASELINES as KNOWN

    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(KNOWN))
    if unknown:
        raise HydatisError(f"--schedulers: unknown {unknown}; baselines: {', '.join(KNOWN)}")
    return names


def run(args: argparse.Namespace) -> int:
    """Run the demo (module docstring); the exit code."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from cli.ml_stack import ml_stack
    from cli.pipeline import (
        _console,
        outcome_table,
        prepare_registry,
        read_outcomes,
        run_with_progress,
        training_arguments,
    )
    from components.import_trace import future_part, trace
    from components.register import tracking_uri
    from hydatis.config import work_dir
    from simulator.compare import run_comparison
    from simulator.engine import SimConfig
    from simulator.node_state import scheduler_context
    from simulator.report import render_table, write_html, write_results

    console = _console()
    t_start = time.perf_counter()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # our own bars
    baselines = _baselines(args.schedulers)
    if not 0 < args.history < args.horizon or args.history < WARMUP_S:
        raise HydatisError(
            f"--history must lie inside the trace and leave the warm-up: {WARMUP_S:g} <= "
            f"{args.history:g} < --horizon {args.horizon:g}"
        )
    arguments = training_arguments(args, deploy="render")
    what = (
        f"the real composite trace from {arguments['data_dir']}"
        if arguments["data_dir"]
        else "the embedded synthetic default"
        + (" (--synthetic)" if args.synthetic else " (no data directory)")
    )
    console.print(f"[bold]Data:[/] {what}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # 1. the training pipeline
    prepare_registry()
    root = Path(args.root) if args.root else work_dir() / "pipeline"
    t0 = time.perf_counter()
    pipe = run_with_progress(
        "training",
        arguments,
        root=root,
        caching=not args.no_cache,
        console=console,
        models=arguments["models"],
    )
    pipeline_s = time.perf_counter() - t0
    outcomes = read_outcomes(pipe)
    console.print(outcome_table(outcomes))
    sources = {o["kind"]: o["uri"] for o in outcomes}

    # 2. the held-out part of the same trace
    with console.status("building the held-out part of the trace…"):
        ds, description = trace(
            nodes=args.nodes,
            load_factor=args.load_factor,
            usage_scale=args.usage_scale,
            horizon_s=args.horizon,
            seed=args.seed,
            synthetic=arguments["synthetic"],
        )
        window = future_part(ds, args.history - WARMUP_S, args.horizon)
    config = SimConfig(warmup_s=WARMUP_S)
    names = ["ml", *baselines]
    info = {
        "description": description,
        "horizon_s": float(args.horizon),
        "history_s": float(args.history),
        "valid_share": float(args.valid_share),
        "seed": int(args.seed),
    }

    # 3. the model servers, the extender and the replay
    t1 = time.perf_counter()
    # The servers resolve models:/ URIs against this registry; MLflow's artifact download
    # reads the registry from the environment, so name it there for the children.
    os.environ.setdefault("MLFLOW_TRACKING_URI", tracking_uri())
    with ExitStack() as running:
        with console.status("starting the model servers and the extender…") as status:
            stack = running.enter_context(
                ml_stack(
                    seed=args.seed,
                    models=sources,
                    use_registry=False,
                    out_dir=out / "ml-stack",
                    progress=status.update,
                )
            )
        console.print(f"[bold]ML scheduler:[/] extender {stack.url}; models {stack.sources}")
        with Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            bars = {n: progress.add_task(n, total=1.0) for n in names}
            results, series, run_info = run_comparison(
                window,
                names,
                seed=args.seed,
                config=config,
                description=f"{description}: held-out part [{args.history / 3600:g} h, "
                f"{args.horizon / 3600:g} h)",
                on_progress=lambda n, f: progress.update(bars[n], completed=f),
                scheduler_params={"ml": {"url": stack.url, **scheduler_context(window)}},
            )
        stack_info = {
            "url": stack.url,
            "sources": dict(stack.sources),
            "origin": dict(stack.origin),
        }
    replay_s = time.perf_counter() - t1

    # 4. the report
    with console.status("writing the report…"):
        reports = _model_reports(outcomes)
        run_info.update(
            {
                "split": [{"part": a, "trace_time": b, "use": c} for a, b, c in _split_rows(info)],
                "pipeline": {
                    "run_dir": str(pipe.run_dir),
                    "log": str(pipe.log_path),
                    "arguments": arguments,
                    "seconds": pipeline_s,
                    "cached_tasks": pipe.cached,
                },
                "models": outcomes,
                "ml_stack": stack_info,
                "replay_seconds": replay_s,
            }
        )
        res_path, run_path = write_results(out, results, run_info)
        html_path = write_html(out, results, series, run_info)
        _augment_html(
            html_path,
            info=info,
            outcomes=outcomes,
            reports=reports,
            results=results,
            stack=stack_info,
        )
        (out / "models.json").write_text(json.dumps(outcomes, indent=2, default=str))
    first = next(iter(results.values()))
    console.print(
        render_table(
            results,
            title=f"Held-out part [{args.history / 3600:g} h, {args.horizon / 3600:g} h) — "
            f"seed {args.seed}, {run_info['dataset']['nodes']} nodes, "
            f"{run_info['dataset']['pods']} pods",
        )
    )
    for line in _summary_lines(results):
        console.print(f"  {line}")
    console.print(
        f"Cluster: requested CPU {first['requested_cpu_share']:.1%}, used CPU "
        f"{first['used_cpu_share']:.1%} (mean node CPU {first['mean_cpu']:.3f}): a scheduler "
        "moves where load lands, not how much there is."
    )
    console.print(
        f"Pipeline {pipeline_s:.0f} s, servers + replay {replay_s:.0f} s, total "
        f"{time.perf_counter() - t_start:.0f} s. Wrote {res_path}, {run_path} and {html_path}"
    )
    return 0
