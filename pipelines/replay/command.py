"""The ``forecaster replay`` command: options, progress, the printed report, exit codes.

Bad input (a malformed file, a bad config) is one line on standard error naming the
file, row and column, and exit code 2; never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "sensors.toml"


def _fail(msg: str) -> NoReturn:
    click.echo(f"error: {msg}", err=True)
    sys.exit(2)


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip()) if text else ()


def _fmt(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1e5 else f"{x:,.0f}"


@click.command("replay")
@click.argument("input_path", metavar="[INPUT]", required=False, type=click.Path(path_type=Path))
@click.option(
    "--topic", help="Replay a Kafka topic's range instead of files (read, never committed)."
)
@click.option("--bootstrap", default="127.0.0.1:9092", show_default=True,
              help="Kafka bootstrap servers, for --topic.")  # fmt: skip
@click.option("--api-version", default="auto", show_default=True, help="Kafka API version.")
@click.option("--from-offset", type=click.IntRange(min=0), help="First offset (every partition).")
@click.option("--to-offset", type=click.IntRange(min=0), help="End offset, not included.")
@click.option("--from-time", help="First record at or after this ISO time (its Kafka timestamp).")
@click.option("--to-time", help="End at the first record at or after this ISO time.")
@click.option(
    "--config", "configs", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file whose [model] table configures the model; repeat to compare several "
    f"(default: {DEFAULT_CONFIG.relative_to(DEFAULT_CONFIG.parents[1])}).",
)  # fmt: skip
@click.option("--horizon", type=click.IntRange(min=1), help="Steps ahead (overrides the config).")
@click.option("--seed", type=click.IntRange(min=0), help="Model seed (overrides the config).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("replay-report"), show_default=True,
              help="Folder for the forecasts, scores, plots and report.")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet",
              show_default=True, help="Format of the forecasts file.")  # fmt: skip
@click.option("--time-col", help="Time column (default: timestamp, time, ts, date or datetime).")
@click.option("--value-col", help="Value column (default: value, else the last column).")
@click.option("--series-col", help="Series id column (default: series; else one per file, "
              "named by the file's stem).")  # fmt: skip
@click.option("--covariates", help="Covariate columns, comma-separated (default: the config's).")
@click.option("--warmup", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.1,
              show_default=True,
              help="Fraction of each series' events learned, not scored.")  # fmt: skip
@click.option("--season", type=click.IntRange(min=1),
              help="Seasonal-naive season in events (default: a day of the spacing).")  # fmt: skip
@click.option("--plot-step", type=click.IntRange(min=1), default=1, show_default=True,
              help="Steps ahead shown in the actual-vs-forecast plot.")  # fmt: skip
@click.option("--batch", type=click.IntRange(min=1), default=2048, show_default=True,
              help="Events per micro-batch fed to the loop.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the scores table as JSON on stdout.")
@click.option("--quiet", is_flag=True, help="No progress bar and no report on the terminal.")
def replay_command(
    input_path: Path | None, topic: str | None, bootstrap: str, api_version: str,
    from_offset: int | None, to_offset: int | None, from_time: str | None,
    to_time: str | None, configs: tuple[Path, ...], horizon: int | None, seed: int | None,
    out: Path, fmt: str, time_col: str | None, value_col: str | None, series_col: str | None,
    covariates: str | None, warmup: float, season: int | None, plot_step: int, batch: int,
    as_json: bool, quiet: bool,
) -> None:  # fmt: skip
    """Backtest recorded events through the service's own loop and model.

    INPUT is a CSV or Parquet file, or a folder of them; or, with --topic, a range of
    a Kafka topic in the service's message format. The forecasts are scored beside three
    baselines (last value, seasonal naive, EWMA).
    """
    from pipelines.configs import load_model_config
    from pipelines.files.source import Columns, InputError
    from pipelines.replay.run import ReplayOptions, labels_for, read_input, replay

    paths = list(configs) or [DEFAULT_CONFIG]
    overrides: dict[str, Any] = {}
    if horizon is not None:
        overrides["horizon"] = horizon
    if seed is not None:
        overrides["seed"] = seed
    cov = _names(covariates)
    if covariates is not None:
        overrides["covariates"] = cov
    try:
        cfgs = [load_model_config(p, **overrides) for p in paths]
    except ValueError as exc:
        _fail(str(exc))
    if not cov:
        cov = cfgs[0].covariates
    if any(c.covariates != cov for c in cfgs):
        _fail("the configs name different covariates; pass --covariates")
    if plot_step > min(c.horizon for c in cfgs):
        _fail(f"--plot-step {plot_step} is beyond the horizon {min(c.horizon for c in cfgs)}")
    cols = Columns(time_col, value_col, series_col, cov)
    err = Console(stderr=True)
    if (input_path is None) == (topic is None):
        _fail("give either INPUT (a file or folder) or --topic, not both")
    try:
        if topic is not None:
            from pipelines.kafka.topics import TopicRange, read_topic

            rng = TopicRange(topic, bootstrap, from_offset, to_offset, from_time, to_time,
                             api_version)  # fmt: skip
            files, parse_seconds = read_topic(rng, cov)
        else:
            assert input_path is not None
            files, parse_seconds = read_input(input_path, cols)
    except InputError as exc:
        _fail(str(exc))
    total = sum(f.rows for f in files) * len(cfgs)
    opts = ReplayOptions(out, fmt, warmup, season, batch, plot_step)
    labelled = list(zip(labels_for(paths), cfgs, strict=True))
    if quiet:
        result = replay(files, parse_seconds, labelled, opts)
    else:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        columns = (TextColumn("replay"), BarColumn(), MofNCompleteColumn(),
                   TaskProgressColumn(), TextColumn("{task.fields[rate]}"),
                   TimeRemainingColumn())  # fmt: skip
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("replay", total=total, rate="")

            def progress(n: int) -> None:
                speed = bar.tasks[0].speed
                bar.update(task, completed=n, rate=f"{speed:,.0f} events/s" if speed else "")

            result = replay(files, parse_seconds, labelled, opts, progress)
    from pipelines.replay.report import write_report

    written = write_report(result, opts)
    if as_json:
        doc = {"scores": result.scores.to_dict(orient="records"), "summary": result.summary}
        click.echo(json.dumps(doc, indent=1))
        return
    if quiet:
        return
    _print(result, written)


def _print(result: Any, written: list[Path]) -> None:
    console = Console(width=max(Console().width, 120))
    s = result.summary
    for run in result.runs:
        sc = run.scores
        allr = sc[sc["series"] == "*"]
        models = [run.label, "last value", "seasonal naive", "ewma"]
        table = Table(title=f"{run.label}: prequential scores per step ahead "
                      f"(all {s['series']} series, after a {s['warmup']:.0%} warm-up)")  # fmt: skip
        for col in ("step", "MAE", "RMSE", "sMAPE", "MASE", "coverage", "last value MAE",
                    "seasonal naive MAE", "EWMA MAE", "MAE / best"):  # fmt: skip
            table.add_column(col, justify="right")
        for step in sorted(allr["step"].unique()):
            at = allr[allr["step"] == step].set_index("model")
            own = at.loc[run.label]
            best = min(float(at.loc[m, "mae"]) for m in models[1:])
            table.add_row(
                f"+{step}", _fmt(own["mae"]), _fmt(own["rmse"]), f"{own['smape']:.4f}",
                f"{own['mase']:.3f}", f"{own['coverage']:.3f}",
                *(_fmt(float(at.loc[m, "mae"])) for m in models[1:]),
                f"{float(own['mae']) / best:.3f}" if best > 0 else "-",
            )  # fmt: skip
        console.print(table)
    if s["ranking"]:
        table = Table(title="Configurations ranked by mean MASE over steps")
        for col in ("rank", "config", "mean MASE", "mean MAE", "mean coverage"):
            table.add_column(col, justify="left" if col == "config" else "right")
        for r in s["ranking"]:
            table.add_row(str(r["rank"]), r["config"], f"{r['mase']:.4f}", _fmt(r["mae"]),
                          f"{r['coverage']:.3f}")  # fmt: skip
        console.print(table)
    rejected = ", ".join(f"{k} {v}" for k, v in s["rejected"].items()) or "none"
    console.print(
        f"{s['rows']:,} rows in {len(s['files'])} file(s), {s['series']} series: "
        f"{s['events']:,} events forecast; rejected: {rejected}; duplicate times "
        f"{s['duplicate_times']}, gaps {s['gaps']}; seasonal naive season {s['season']} events",
        highlight=False,
    )
    retrains = ", ".join(f"{c['config']} {c['retrains']} ({c['retrains_accepted']} accepted)"
                         for c in s["configs"])  # fmt: skip
    console.print(
        f"parse {s['parse_seconds']:.2f} s, replay {s['replay_seconds']:.2f} s: "
        f"[bold]{s['events_per_second']:,.0f} events/s[/] including parsing "
        f"({s['loop_events_per_second']:,.0f} in the loop); retrains: {retrains}",
        highlight=False,
    )
    console.print("wrote " + ", ".join(str(p) for p in written), highlight=False)


@click.command("replay")
@click.option(
    "--file", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="A timestamp,value CSV (default: NAB machine_temperature_system_failure).",
)  # fmt: skip
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default=DEFAULT_CONFIG, show_default=True,
              help="TOML file with a [model] table.")  # fmt: skip
@click.option("--horizon", type=click.IntRange(min=1), default=12, show_default=True)
@click.option("--rows", type=click.IntRange(min=100), help="Only the first ROWS rows.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every figure.")
def bench_replay_command(
    path: Path | None, config_path: Path, horizon: int, rows: int | None, as_json: bool
) -> None:
    """Replay throughput (events/s, parsing included) and scores beside River.

    River's SNARIMAX and HoltWinters run on the same file and horizon, in the same run.
    """
    from pipelines.bench import replay as bench
    from pipelines.bench.datasets import NAB, data_root
    from pipelines.configs import load_model_config

    if path is None:
        path = data_root() / NAB / "machine_temperature_system_failure.csv"
    if not path.is_file():
        _fail(f"{path}: no such file; set FORECASTER_DATA to the shared/data folder or pass --file")
    try:
        cfg = load_model_config(config_path, horizon=horizon)
    except ValueError as exc:
        _fail(str(exc))
    result = bench.run(path, cfg, rows)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    k = result["horizon"]
    table = Table(title=f"Replay vs River on {path.name} (horizon {k}), parsing included; "
                  f"MAE after a {result['warmup']:.0%} warm-up")  # fmt: skip
    cols = ("contender", "events", "seconds", "events/s", "vs SNARIMAX", "MAE +1", f"MAE +{k}",
            "River's own MAE +1", f"River's own MAE +{k}")  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col == "contender" else "right")
    for r in result["rows"]:
        own = [r["river_mae_1"], r[f"river_mae_{k}"]]
        table.add_row(
            r["name"], f"{r['events']:,}", f"{r['seconds']:.2f}", f"{r['events_per_second']:,.0f}",
            f"{r['vs_snarimax']:.2f}x", f"{r['mae_1']:.4g}", f"{r[f'mae_{k}']:.4g}",
            *(f"{v:.4g}" if v is not None else "-" for v in own),
        )  # fmt: skip
    console = Console(width=max(Console().width, 140))
    console.print(table)
    console.print(f"goal: {result['goal']}; measured {result['ratio']:.2f}x", highlight=False)
    b = result["budget"]
    console.print(
        f"the goal allows {b['goal_allows_seconds']:.3f} s for the whole file; the shipped "
        f"config retrained {b['retrains']:.0f} times at {b['seconds_per_retrain']:.3f} s each, "
        f"so one retrain alone is {b['one_retrain_over_allowed']:.1f}x that",
        highlight=False,
    )
