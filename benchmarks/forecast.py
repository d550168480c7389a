"""Capacity forecast backtest on the public cluster aggregates (Google 2019, Azure 2019,
Alibaba 2018), against seasonal-naive forecasts computed in the same run.

For each source, resource and horizon, origins step back every ``--stride`` from the
last one that leaves a full horizon, inside the held-out last ``--test-share`` of the
series (a horizon longer than that gets the latest ``--long-origins`` origins). At every
origin the forecast (:func:`monitoring.forecast.forecast_values`) sees only the past: it
chooses its model by its own rolling-origin backtest and sizes its intervals from that
backtest's errors. The same past gives the naive forecasts: the same time yesterday and
the same time last week. Scores pool the origins: 1 − WAPE, MASE (scaled by the history's
same-time-yesterday error), and the share of actual values inside the 80 % and 95 %
intervals. A horizon the data cannot support (history needed + horizon > series) is
not scored, and the report says what it would need.

Targets (issue 8): WAPE ≤ 0.9 × the best naive's at 24 h on every source, CPU; the 80 %
interval covers 75–85 %. BENCH lines: ``forecast_24h_wape_ratio_vs_naive`` (worst
source, CPU), ``forecast_80_interval_coverage`` (the source farthest from 80 %, CPU, 24 h),
and, reported beside them, ``forecast_95_interval_coverage`` and
``forecast_mem_24h_wape_ratio_vs_naive`` (memory, worst source) and
``forecast_80_interval_coverage_pooled`` (every CPU 24 h step of the three sources).

Run: ``.venv/bin/python benchmarks/forecast.py`` (about 3–5 minutes on 2 cores);
``--stride 6h`` doubles the origins, ``--end-share 0.8`` scores another slice (the series
cut to its first 80 %), ``--file google2019=PATH`` reads another file of the same format.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and benchmarks/simulator.py
# would shadow the simulator package; the repository root must be importable.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from hydatis.config import data_dir as configured_data_dir  # noqa: E402
from hydatis.errors import DataSourceError, HydatisError  # noqa: E402
from monitoring.forecast import (  # noqa: E402
    CANDIDATES,
    DEFAULT_CANDIDATES,
    Evaluation,
    ForecastSettings,
    evaluate_origins,
    held_out_origins,
    parse_horizon,
)
from monitoring.forecast.errors import format_duration  # noqa: E402
from simulator.importers.aggregates import AGGREGATES_DIR, SERIES, STEP_S, read_aggregate  # noqa: E402

log = logging.getLogger("benchmarks.forecast")

#: source -> resource -> column of the aggregate file.
COLUMNS: dict[str, dict[str, str]] = {
    "alibaba2018": {"cpu": "cpu_util_percent", "mem": "mem_util_percent"},
    "google2019": {"cpu": "cpu_util", "mem": "mem_util"},
    "azure_v2": {"cpu": "cpu_usage", "mem": "assigned_mem"},
}
RATIO_TARGET = 0.9
COVERAGE_BAND = (0.75, 0.85)


def _file_for(source: str, data_dir: Path | None, given: dict[str, Path]) -> Path | None:
    """The file to read: ``--file``, else the importer's default name, else the first file
    matching ``<aggregates>/**/<source>/*grouped_300_seconds*.csv`` (another copy or
    release of the package lays its files out the same way)."""
    if source in given:
        return given[source]
    base = data_dir or configured_data_dir()
    if base is None:
        return None
    default = base / AGGREGATES_DIR / SERIES[source][0]
    if default.is_file():
        return default
    found = sorted(base.glob(f"**/{source}/*grouped_300_seconds*.csv"))
    if found:
        log.info("%s not found; using %s", default, found[0])
        return found[0]
    return None


def _series(source: str, resource: str, path: Path, end_share: float) -> np.ndarray:
    df = read_aggregate(source, path=path)
    col = COLUMNS[source][resource]
    y = df[col].to_numpy(dtype="float64")
    if not np.isfinite(y).all():
        raise DataSourceError(f"{path}: column {col} has missing values")
    return y[: round(end_share * y.size)]


def _table(rows: list[dict], title: str) -> Table:
    table = Table(title=title, header_style="bold")
    for col in rows[0]:
        table.add_column(
            col, justify="left" if col in {"source", "res", "origins", "models"} else "right"
        )
    for row in rows:
        table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()))
    return table


def _plot(source: str, resource: str, y: np.ndarray, scores, horizon: str) -> go.Figure:
    first = scores[0].origin
    fig = go.Figure()
    t = (np.arange(first, scores[-1].origin + scores[-1].actual.size)) * STEP_S / 86400
    fig.add_trace(go.Scatter(x=t, y=y[first : first + t.size], name="actual", line={"width": 1}))
    for i, s in enumerate(scores):
        tt = (s.origin + np.arange(s.forecast.size)) * STEP_S / 86400
        lo, hi = s.bounds[80]
        group = f"o{i}"
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([tt, tt[::-1]]),
                y=np.concatenate([hi, lo[::-1]]),
                fill="toself",
                fillcolor="rgba(31,119,180,0.10)",
                line={"width": 0},
                legendgroup=group,
                showlegend=i == 0,
                name="80 % interval",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=tt,
                y=s.forecast,
                legendgroup=group,
                showlegend=i == 0,
                name="forecast",
                line={"color": "rgb(31,119,180)", "width": 1},
            )
        )
        if "naive_week" in s.naive or "naive_day" in s.naive:
            nv = "naive_week" if "naive_week" in s.naive else "naive_day"
            fig.add_trace(
                go.Scatter(
                    x=tt,
                    y=s.naive[nv],
                    legendgroup=group,
                    showlegend=i == 0,
                    name=nv,
                    line={"color": "rgb(200,120,40)", "width": 1, "dash": "dot"},
                )
            )
    fig.update_layout(
        title=f"{source} {resource}, {horizon} ahead from {len(scores)} origins",
        xaxis_title="days from the trace start",
        margin={"t": 50, "b": 40},
    )
    return fig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", type=Path, default=None, help="the traces' folder")
    p.add_argument("--sources", default=",".join(SERIES), help="comma-separated")
    p.add_argument("--file", action="append", default=[], metavar="SOURCE=PATH")
    p.add_argument("--resources", default="cpu,mem")
    p.add_argument("--horizons", default="24h,7d,30d")
    p.add_argument("--stride", default="12h", help="between scored origins (more: 6h)")
    p.add_argument("--long-origins", type=int, default=2, help="origins for long horizons")
    p.add_argument("--test-share", type=float, default=0.2)
    p.add_argument("--end-share", type=float, default=1.0, help="score the first share only")
    p.add_argument("--windows", type=int, default=ForecastSettings.windows)
    p.add_argument("--top", type=int, default=ForecastSettings.top, help="leaders averaged")
    p.add_argument("--models", default=",".join(DEFAULT_CANDIDATES), help=f"of {list(CANDIDATES)}")
    p.add_argument("--out", type=Path, default=Path("out/bench/forecast"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    console = Console(width=240)

    try:
        given = {}
        for item in args.file:
            src, sep, path = item.partition("=")
            if not sep or src not in SERIES:
                raise HydatisError(
                    f"--file {item!r}: expected SOURCE=PATH, SOURCE in {list(SERIES)}"
                )
            given[src] = Path(path)
        sources = [s.strip() for s in args.sources.split(",") if s.strip()]
        unknown = [s for s in sources if s not in SERIES]
        if unknown:
            raise HydatisError(f"unknown source(s) {unknown}; known: {list(SERIES)}")
        resources = [r.strip() for r in args.resources.split(",") if r.strip()]
        horizons = [(h.strip(), parse_horizon(h.strip())) for h in args.horizons.split(",")]
        settings = ForecastSettings(
            windows=args.windows,
            top=args.top,
            candidates=tuple(m.strip() for m in args.models.split(",") if m.strip()),
        )
        stride_s = parse_horizon(args.stride)
    except HydatisError as err:
        console.print(f"[bold red]error:[/] {err}")
        return 2

    started = time.perf_counter()
    rows, notes, figures = [], [], []
    results: dict[tuple[str, str, str], Evaluation] = {}
    with Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        for source in sources:
            path = _file_for(source, args.data_dir, given)
            if path is None:
                notes.append(f"{source}: no data file (set HYDATIS_DATA_DIR or --file)")
                continue
            for resource in resources:
                y = _series(source, resource, path, args.end_share)
                for label, horizon_s in horizons:
                    origins, how = held_out_origins(
                        y.size,
                        STEP_S,
                        horizon_s,
                        test_share=args.test_share,
                        stride_s=stride_s,
                        max_origins=None
                        if horizon_s <= args.test_share * y.size * STEP_S
                        else args.long_origins,
                        settings=settings,
                    )
                    if not origins:
                        notes.append(f"{source} {resource} {label}: {how}")
                        continue
                    task = progress.add_task(f"{source} {resource} {label}", total=len(origins))
                    scores = evaluate_origins(
                        y,
                        STEP_S,
                        horizon_s,
                        origins,
                        settings,
                        name=f"{source} {resource}",
                        on_origin=lambda done, _n, task=task: progress.update(task, completed=done),
                    )
                    ev = Evaluation.of(scores)
                    results[(source, resource, label)] = ev
                    nd = ev.wape.get("naive_day", np.nan)
                    nw = ev.wape.get("naive_week", np.nan)
                    rows.append(
                        {
                            "source": source,
                            "res": resource,
                            "horizon": label,
                            "origins": how,
                            "models": ", ".join(f"{m}×{k}" for m, k in sorted(ev.models.items())),
                            "1-WAPE model": 1 - ev.wape["model"],
                            "1-WAPE naive day": 1 - nd,
                            "1-WAPE naive week": 1 - nw,
                            "WAPE ratio vs best naive": ev.ratio,
                            "MASE model": ev.mase["model"],
                            "MASE best naive": ev.mase[ev.best_naive],
                            "cover 80": ev.coverage[80],
                            "cover 95": ev.coverage[95],
                        }
                    )
                    if label == horizons[0][0]:
                        figures.append(_plot(source, resource, y, scores, label))
    elapsed = time.perf_counter() - started
    if not rows:
        console.print("[bold red]error:[/] nothing scored: " + "; ".join(notes))
        return 2
    console.print(_table(rows, "Capacity forecast vs seasonal naive (rolling origin, same run)"))
    for note in notes:
        console.print(f"  {note}")
    console.print(
        f"Settings: models {list(settings.candidates)}, up to {settings.windows} backtest "
        f"windows per forecast (stride half the horizon), the mean of the best {settings.top}, "
        f"levels {settings.levels}; scored "
        f"origins every {format_duration(stride_s)} in the last {args.test_share:.0%}"
        + (f" of the first {args.end_share:.0%} of each series" if args.end_share < 1 else "")
        + f". {elapsed:.0f} s."
    )

    cpu24 = {s: results[(s, "cpu", "24h")] for s in sources if (s, "cpu", "24h") in results}
    mem24 = {s: results[(s, "mem", "24h")] for s in sources if (s, "mem", "24h") in results}
    lines = []
    if cpu24:
        worst_ratio = max(ev.ratio for ev in cpu24.values())
        cov80 = max((ev.coverage[80] for ev in cpu24.values()), key=lambda c: abs(c - 0.80))
        cov95 = max((ev.coverage[95] for ev in cpu24.values()), key=lambda c: abs(c - 0.95))
        met_ratio = all(ev.ratio <= RATIO_TARGET for ev in cpu24.values())
        met_cov = all(
            COVERAGE_BAND[0] <= ev.coverage[80] <= COVERAGE_BAND[1] for ev in cpu24.values()
        )
        console.print(
            f"Targets (CPU, 24 h): WAPE ≤ {RATIO_TARGET} × best naive on every source — "
            f"{'met' if met_ratio else 'MISSED'} (worst {worst_ratio:.3f}); 80 % interval "
            f"covers {COVERAGE_BAND[0]:.0%}–{COVERAGE_BAND[1]:.0%} on every source — "
            f"{'met' if met_cov else 'MISSED'} (farthest {cov80:.3f})."
        )
        pooled80 = sum(ev.coverage[80] * ev.points for ev in cpu24.values()) / sum(
            ev.points for ev in cpu24.values()
        )
        lines += [
            f"BENCH forecast_24h_wape_ratio_vs_naive {worst_ratio:.4f} ratio",
            f"BENCH forecast_80_interval_coverage {cov80:.4f} fraction",
            f"BENCH forecast_95_interval_coverage {cov95:.4f} fraction",
            f"BENCH forecast_80_interval_coverage_pooled {pooled80:.4f} fraction",
        ]
    if mem24:
        lines.append(
            f"BENCH forecast_mem_24h_wape_ratio_vs_naive "
            f"{max(ev.ratio for ev in mem24.values()):.4f} ratio"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out / "forecast_benchmark.csv", index=False)
    page = args.out / "forecast_benchmark.html"
    page.write_text(
        "<html><head><meta charset='utf-8'><title>forecast benchmark</title></head><body>"
        "<h1>Capacity forecast vs seasonal naive</h1>"
        + pd.DataFrame(rows).to_html(index=False, float_format=lambda v: f"{v:.4f}")
        + "".join(f"<p>{n}</p>" for n in notes)
        + "".join(
            f.to_html(full_html=False, include_plotlyjs=(i == 0), default_height=420)
            for i, f in enumerate(figures)
        )
        + "</body></html>"
    )
    console.print(f"Report: {page}")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
