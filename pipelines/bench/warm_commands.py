"""``forecaster bench warm``: the model files' benchmark command and its table."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from pipelines.bench.commands import panel_options
from pipelines.configs import shipped
from pipelines.tables import json_option, print_json, report_table, wide_console


@click.command("warm")
@click.option(
    "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file whose [model] table configures the model (default: the shipped sensors.toml).",
)  # fmt: skip
@panel_options("Processes for the streams' runs")
@json_option
def bench_warm_command(
    config_path: Path | None, streams: str | None, jobs: int, as_json: bool
) -> None:
    """Train on 70% of each panel stream, replay the last 30% from the model file.

    Beside an untrained replay of the same 30% and a replay of the whole stream, scored
    on the same events: one file per stream, and one trained on all streams together.
    """
    from pipelines.bench import accuracy, warm
    from pipelines.bench.commands import _require_data
    from pipelines.configs import load_model_config

    _require_data()
    config = config_path or shipped("sensors.toml")
    try:
        cfg = load_model_config(config, background=False)
        picked = accuracy.select(streams)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    console = Console(stderr=True)
    result = warm.run(cfg, picked, jobs, progress=console.log)
    if print_json(result, as_json):
        return
    k = cfg.horizon
    table = report_table(
        f"MAE ratios on the last {1 - warm.CUT:.0%} of each stream ({config.name}); own: the "
        f"stream's file, all: the all-streams file (id {result['all_streams_file']}); "
        "/cold: to an untrained replay of that part, /whole: to a replay of the whole stream",
        ("stream", "events", "own +1 MAE", "own/cold +1", f"own/cold +{k}", "own/whole +1",
         f"own/whole +{k}", "all/cold +1", f"all/cold +{k}", "all/whole +1", f"all/whole +{k}"),
        left=("stream",),
    )  # fmt: skip
    for r in result["rows"]:
        table.add_row(
            r["stream"], str(r["events"]), f"{r['own+1']:.4g}",
            *(f"{r[f'{f}/{b}+{s}']:.3f}" for f in ("own", "all") for b in ("cold", "whole")
              for s in (1, k)),
        )  # fmt: skip
    out = wide_console(180)  # the streams' names in full
    out.print(table)
    for key, value in result["verdict"].items():
        out.print(f"{key}: {str(value).lower() if isinstance(value, bool) else value}")
