"""``forecaster bench``: the command group, and the model benchmarks' commands and tables.

Each command runs its benchmark (a module of :mod:`pipelines.bench`) and prints its
figures as a table, or with ``--json`` as one JSON object. The benchmarks that stream
through Kafka or replay a file are in :mod:`pipelines.bench.stream_commands`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from pipelines.configs import shipped
from pipelines.tables import json_option, print_json, report_table, wide_console


@click.group()
def bench() -> None:
    """Benchmarks, measured side by side in one run on this machine."""


def _require_data() -> None:
    """Fail with a usage error, not a traceback, when the recordings are not there."""
    from pipelines.bench.datasets import data_root

    root = data_root()
    if not (root / "NAB").is_dir() or not (root / "ETDataset").is_dir():
        msg = f"evaluation data not found in {root}; set FORECASTER_DATA to the shared/data folder"
        raise click.UsageError(msg)


def panel_options(jobs_help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--streams`` and ``--jobs``, as every benchmark on the panel takes them."""

    def add(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option(
            "--jobs", type=click.IntRange(min=1), default=os.cpu_count() or 1,
            show_default="CPU count", help=f"{jobs_help}; figures do not depend on it.",
        )(f)  # fmt: skip
        return click.option(
            "--streams", default=None,
            help="Comma-separated parts of panel file names (e.g. nyc_taxi,ETTh1); default: "
            "all 18.",
        )(f)  # fmt: skip

    return add


@bench.command("accuracy")
@click.option(
    "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file whose [model] table configures the GRU (default: the shipped sensors.toml).",
)  # fmt: skip
@click.option("--seeds", default="0,1,2", show_default=True, help="Seeds; the median is scored.")
@panel_options("Processes for the GRU's (stream, seed) runs and River's")
@json_option
def bench_accuracy(
    config_path: Path | None, seeds: str, streams: str | None, jobs: int, as_json: bool
) -> None:
    """Prequential MAE at +1 and +12 on the 18-stream panel, beside naive baselines and River."""
    from pipelines.bench import accuracy
    from pipelines.configs import load_model_config

    _require_data()
    config = config_path or shipped("sensors.toml")
    try:
        cfg = load_model_config(config, background=False)
        seed_list = tuple(int(s) for s in seeds.split(","))
        picked = accuracy.select(streams)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    console = Console(stderr=True)
    result = accuracy.run(cfg, seed_list, progress=lambda name: console.log(f"scoring {name}"),
                          jobs=jobs, streams=picked)  # fmt: skip
    if print_json(result, as_json):
        return
    table = report_table(
        f"Prequential MAE after a 10% warm-up ({config.name}, median of seeds {seeds}); "
        "ratio: ours / best naive; (all): ours / best of naive and River",
        ("stream", "ours +1", "ratio", "(all)", "ours +12", "ratio", "(all)", "coverage"),
        left=("stream",),
    )
    for r in result["rows"]:
        table.add_row(
            r["stream"], f"{r['gru+1']:.4g}", f"{r['ratio+1']:.3f}", f"{r['ratio_all+1']:.3f}",
            f"{r['gru+12']:.4g}", f"{r['ratio+12']:.3f}", f"{r['ratio_all+12']:.3f}",
            f"{r['coverage_min']:.3f}-{r['coverage_max']:.3f}",
        )  # fmt: skip
    out = wide_console()
    out.print(table)
    for key, value in result["verdict"].items():
        out.print(f"{key}: {str(value).lower() if isinstance(value, bool) else value}")


@bench.command("faults")
@json_option
def bench_faults(as_json: bool) -> None:
    """+1 errors before and after 300 events of a fault, with the shipped config."""
    from pipelines.bench import faults

    rows = faults.run()
    if print_json(rows, as_json):
        return
    cols = ("fault", "before", *(f"+{b}-{b + 100}" for b in faults.BLOCKS), "retrains rejected")
    table = report_table(
        f"+1 MAE per 100 events, before and after {faults.FAULT} events of a fault",
        cols, left=("fault",),
    )  # fmt: skip
    for r in rows:
        table.add_row(r["fault"], f"{r['before']:.3g}", *(f"{v:.3g}" for v in r["after"].values()),
                      f"{r['rejected']} of {r['retrains']}")  # fmt: skip
    wide_console().print(table)


@bench.command("scale")
@json_option
@click.option("--quick", is_flag=True, help="Two small sizes: a smoke test, not a measurement.")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True,
              help="Side-by-side runs per size; the table shows their medians.")  # fmt: skip
def bench_scale(as_json: bool, quick: bool, repeat: int) -> None:
    """Per-event cost and memory per series, from 1,000 to 100,000 series."""
    from pipelines.bench import scale

    result = scale.run(quick=quick, repeat=repeat)
    if print_json(result, as_json):
        return
    cells = [
        (f"{r['series']:,}", name, f"{r['us_per_event']:.2f}",
         f"{r.get('cost_vs_no_aggregation', 1.0):.2f}x", f"{r['cpu_us_per_event']:.2f}",
         f"{r.get('cpu_cost_vs_no_aggregation', 1.0):.2f}x", f"{r['bytes_per_series']:,}",
         f"{r['state_mb']:.0f}", f"{r['max_rss_mb']:.0f}")
        for plain, mixed in zip(result["rows"], result["aggregation_rows"], strict=True)
        for name, r in (("none", plain), ("mlpoly", mixed))
    ]  # fmt: skip
    table = report_table(
        f"Per-event cost as series grow (batches of {result['batch']:,} events)",
        ("series", "aggregation", "us/event", "vs none", "CPU us/event", "CPU vs none",
         "bytes/series", "state MB", "max RSS MB (both)"),
        left=("aggregation",), rows=cells,
    )  # fmt: skip
    out = wide_console()
    out.print(table)
    ratio = result["cost_ratio_largest_to_smallest"]
    out.print(f"cost per event, largest / smallest (no aggregation): {ratio:.2f}x")
    agg, cpu = result["aggregation_cost_ratio_max"], result["aggregation_cpu_cost_ratio_max"]
    for r in result["aggregation_rows"]:
        lo, hi = r["cost_vs_no_aggregation_range"]
        out.print(f"{r['series']:,} series: aggregation / none {r['cost_vs_no_aggregation']:.3f}x "
                  f"(median of {result['repeat']} runs; range {lo:.3f}-{hi:.3f}x)")  # fmt: skip
    out.print(f"cost per event with aggregation / without, worst size: {agg:.2f}x elapsed, "
              f"{cpu:.2f}x CPU (bar: 1.20x)")  # fmt: skip


@bench.command("etth1")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file whose [model] table configures the GRU (horizon is set per run; "
    "default: the shipped etth1.toml).",
)
@json_option
def bench_etth1(config_path: Path | None, as_json: bool) -> None:
    """ETTh1 on the published protocol (OT, z-scored, H=24 and 96), frozen and online."""
    from pipelines.bench import etth1
    from pipelines.configs import load_model_config

    _require_data()
    try:
        cfg = load_model_config(config_path or shipped("etth1.toml"))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    result = etth1.run(cfg)
    if print_json(result, as_json):
        return
    table = report_table(
        "ETTh1 OT, published protocol: MSE / MAE over steps 1..H (test rows)",
        ("H", "last value", "GRU frozen", "GRU online", "published"),
        left=("published",),
    )
    for r in result["rows"]:
        pub = ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in r["published"].items())
        cells = [f"{r[k][0]:.4f} / {r[k][1]:.4f}" for k in ("last value", "frozen", "online")]
        table.add_row(str(r["horizon"]), *cells, pub)
    wide_console().print(table)


@bench.command("core")
@json_option
@click.option("--quick", is_flag=True, help="Fewer rounds: a smoke test, not a measurement.")
def bench_core(as_json: bool, quick: bool) -> None:
    """GRU step and training step against PyTorch (one thread, float64)."""
    from pipelines.bench import core

    result = core.run(quick=quick)
    if print_json(result, as_json):
        return
    m = result["machine"]
    table = report_table(
        "GRU kernels vs PyTorch (one thread, float64, medians)",
        ("case", "unit", "ours", "torch", "speedup", "lower bound", "of bound"),
        left=("case", "unit"),
    )
    for r in result["rows"]:
        table.add_row(
            r["name"], r["unit"], f"{r['ours_us']:.3f}", f"{r['torch_us']:.3f}",
            f"{r['speedup']:.1f}x", f"{r['bound_us']:.3f}", f"{r['fraction_of_bound']:.0%}",
        )  # fmt: skip
    console = wide_console()
    console.print(table)
    console.print(
        f"numba {m['numba']}, torch {m['torch']} ({m['torch_threads']} thread), "
        f"one-thread matmul {m['matmul_gflops_1thread']:.1f} GFLOP/s (the lower bound's divisor)"
    )


def _register() -> None:
    """The benchmarks whose commands live in their own modules."""
    from pipelines.bench.anomaly_commands import bench_anomalies
    from pipelines.bench.retrain_commands import bench_drift_command, bench_retrain_command
    from pipelines.bench.stream_commands import (
        bench_checkpoints,
        bench_kafka,
        bench_replay,
        bench_soak,
    )
    from pipelines.bench.warm_commands import bench_warm_command

    for command in (bench_kafka, bench_soak, bench_replay, bench_checkpoints,
                    bench_drift_command, bench_retrain_command, bench_warm_command,
                    bench_anomalies):  # fmt: skip
        bench.add_command(command)


_register()
