"""The ``forecaster replay`` command: options, progress, the printed report, exit codes.

Bad input (a malformed file, a bad config) is one line on standard error naming the
file, row and column, and exit code 2; never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console

from pipelines.configs import ConfigFile, shipped
from pipelines.tables import report_table, wide_console

DEFAULT_CONFIG = "sensors.toml"  # shipped with the package (pipelines.configs)


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
@click.option("--bootstrap", help="Kafka bootstrap servers, for --topic (default: the first "
              "config's [kafka] bootstrap_servers, 127.0.0.1:9092 unless set).")  # fmt: skip
@click.option("--api-version", help="Kafka API version, for --topic (default: the first config's "
              "[kafka] api_version, auto unless set).")  # fmt: skip
@click.option("--from-offset", type=click.IntRange(min=0), help="First offset (every partition).")
@click.option("--to-offset", type=click.IntRange(min=0), help="End offset, not included.")
@click.option("--from-time", help="First record at or after this ISO time (its Kafka timestamp).")
@click.option("--to-time", help="End at the first record at or after this ISO time.")
@click.option(
    "--config", "configs", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file whose [model] table configures the model; repeat to compare several "
    f"(default: the shipped {DEFAULT_CONFIG}, as config/{DEFAULT_CONFIG}). With --topic, "
    "the first one's [kafka] table (and FORECASTER_KAFKA__* variables) reaches the broker.",
)  # fmt: skip
@click.option("--horizon", type=click.IntRange(min=1), help="Steps ahead (overrides the config).")
@click.option("--seed", type=click.IntRange(min=0), help="Model seed (overrides the config).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the forecasts, scores, plots and report (default: "
              "replay-report; with --json, none: nothing is written).")  # fmt: skip
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
@click.option("--model", "model_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Start every partition's model from this model file (forecaster train); "
              "without --config, with the file's own config.")  # fmt: skip
@click.option("--save-model", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the model as the replay ends to this model file (the first "
              "config's; of several partitions, the one that learned most).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the scores table as JSON on stdout.")
@click.option("--quiet", is_flag=True, help="No progress bar and no report on the terminal.")
def replay_command(
    input_path: Path | None, topic: str | None, bootstrap: str | None,
    api_version: str | None, from_offset: int | None, to_offset: int | None,
    from_time: str | None, to_time: str | None, configs: tuple[Path, ...],
    horizon: int | None, seed: int | None, out: Path | None, fmt: str, time_col: str | None,
    value_col: str | None, series_col: str | None, covariates: str | None, warmup: float,
    season: int | None, plot_step: int, batch: int, model_path: Path | None,
    save_model: Path | None, as_json: bool, quiet: bool,
) -> None:  # fmt: skip
    """Backtest recorded events through the service's own loop and model.

    INPUT is a CSV or Parquet file, or a folder of them; or, with --topic, a range of
    a Kafka topic in the service's message format. The forecasts are scored beside three
    baselines (last value, seasonal naive, EWMA).
    """
    from pipelines.configs import load_model_config
    from pipelines.engine.recorded import Columns, InputError
    from pipelines.replay.run import ReplayOptions, labels_for, read_input, replay

    model = _model_file(model_path) if model_path is not None else None
    if save_model is not None and save_model.is_dir():
        _fail(f"--save-model {save_model}: is a folder, give a file name (e.g. model.fcm)")
    paths: list[ConfigFile] = [*configs] or [shipped(DEFAULT_CONFIG)]
    overrides: dict[str, Any] = {}
    if horizon is not None:
        overrides["horizon"] = horizon
    if seed is not None:
        overrides["seed"] = seed
    cov = _names(covariates)
    if covariates is not None:
        overrides["covariates"] = cov
    try:
        if model is not None and not configs:
            from dataclasses import replace

            cfgs = [replace(model.config, **overrides)]
        else:
            cfgs = [load_model_config(p, **overrides) for p in paths]
    except ValueError as exc:
        _fail(str(exc))
    init = None
    if model is not None:
        from pipelines.models.file import ModelFileError, start_state

        try:
            for c in cfgs:
                init = start_state(model, c, f"--model {model_path}")
        except ModelFileError as exc:
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

            kafka = _kafka_settings(paths[0], bootstrap, api_version)
            rng = TopicRange(topic, kafka, from_offset, to_offset, from_time, to_time)
            files, parse_seconds = read_topic(rng, cov)
        else:
            assert input_path is not None
            files, parse_seconds = read_input(input_path, cols)
    except InputError as exc:
        _fail(str(exc))
    total = sum(f.rows for f in files) * len(cfgs)
    if out is None and not as_json:
        out = Path("replay-report")
    opts = ReplayOptions(out, fmt, warmup, season, batch, plot_step)
    # A run from a model file's own config is labelled by the file.
    names = [p.name for p in paths] if configs or model_path is None else [model_path.name]
    labelled = list(zip(labels_for(names), cfgs, strict=True))
    if quiet:
        result = replay(files, parse_seconds, labelled, opts, None, init)
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

            result = replay(files, parse_seconds, labelled, opts, progress, init)
    from pipelines.replay.report import write_report

    written = write_report(result, opts, out) if out is not None else []
    if save_model is not None:
        written.append(_save_model(result, warmup, cfgs[0], save_model))
    if as_json:
        doc = {"scores": result.scores.to_dict(orient="records"), "summary": result.summary}
        click.echo(json.dumps(doc, indent=1))
        return
    if quiet:
        return
    _print(result, written)


def _model_file(path: Path) -> Any:
    """The model file at ``path``, or exit 2 naming it and its fault."""
    from pipelines.models.file import ModelFileError, read_model

    try:
        return read_model(path)
    except ModelFileError as exc:
        _fail(f"--model {exc}")


def _save_model(result: Any, warmup: float, cfg: Any, path: Path) -> Path:
    from pipelines.models.file import write_model
    from pipelines.replay.save import save_replayed

    try:
        write_model(path, save_replayed(result, warmup, cfg))
    except OSError as exc:
        _fail(f"--save-model {path}: {exc.strerror or exc}")
    return path


def _kafka_settings(config: ConfigFile, bootstrap: str | None, api_version: str | None) -> Any:
    """The config's ``[kafka]`` table with the environment over it, and the options over both.

    The same settings the service reads, so ``[kafka] client`` (SASL, SSL) reaches the
    topic reader too.
    """
    from pydantic import ValidationError

    from pipelines.configs import apply_env, read_toml
    from pipelines.kafka.options import KafkaSettings

    table = apply_env(read_toml(config), os.environ).get("kafka", {})
    if bootstrap is not None:
        table["bootstrap_servers"] = bootstrap
    if api_version is not None:
        table["api_version"] = api_version
    try:
        return KafkaSettings.model_validate(table)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        _fail(f"{config}: [kafka] {problems}")


def _print(result: Any, written: list[Path]) -> None:
    console = wide_console(120)
    s = result.summary
    for run in result.runs:
        sc = run.scores
        allr = sc[sc["series"] == "*"]
        models = [run.label, "last value", "seasonal naive", "ewma"]
        table = report_table(
            f"{run.label}: prequential scores per step ahead (all {s['series']} series, "
            f"after a {s['warmup']:.0%} warm-up)",
            ("step", "MAE", "RMSE", "sMAPE", "MASE", "coverage", "last value MAE",
             "seasonal naive MAE", "EWMA MAE", "MAE / best"),
        )  # fmt: skip
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
        table = report_table("Configurations ranked by mean MASE over steps",
                             ("rank", "config", "mean MASE", "mean MAE", "mean coverage"),
                             left=("config",))  # fmt: skip
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
