"""The ``forecaster`` command line."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table


@click.group()
@click.version_option(package_name="gru-stream-forecaster")
def main() -> None:
    """Streaming time-series forecasting with a per-series GRU state."""


@main.group()
def bench() -> None:
    """Benchmarks, measured side by side in one run on this machine."""


@bench.command("core")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every figure.")
@click.option("--quick", is_flag=True, help="Fewer rounds: a smoke test, not a measurement.")
def bench_core(as_json: bool, quick: bool) -> None:
    """GRU step and training step against PyTorch (one thread, float64)."""
    from pipelines.benchmarks import core

    result = core.run(quick=quick)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    m = result["machine"]
    table = Table(title="GRU kernels vs PyTorch (one thread, float64, medians)")
    for col in ("case", "unit", "ours", "torch", "speedup", "lower bound", "of bound"):
        table.add_column(col, justify="left" if col in ("case", "unit") else "right")
    for r in result["rows"]:
        table.add_row(
            r["name"], r["unit"], f"{r['ours_us']:.3f}", f"{r['torch_us']:.3f}",
            f"{r['speedup']:.1f}x", f"{r['bound_us']:.3f}", f"{r['fraction_of_bound']:.0%}",
        )  # fmt: skip
    console = Console(width=max(Console().width, 110))
    console.print(table)
    console.print(
        f"numba {m['numba']}, torch {m['torch']} ({m['torch_threads']} thread), "
        f"one-thread matmul {m['matmul_gflops_1thread']:.1f} GFLOP/s (the lower bound's divisor)"
    )
