"""``forecaster train`` and ``forecaster model show``: make a model file, and read one.

Bad input (a missing or bad input file, a bad config, a bad ``--out``) is one line on
standard error and exit code 2, as in ``forecaster replay``.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from pipelines.configs import ConfigFile, shipped
from pipelines.replay.command import DEFAULT_CONFIG, _fail, _fmt, _kafka_settings, _names
from pipelines.tables import report_table, wide_console


@click.command("train")
@click.argument("inputs", metavar="[INPUT]...", nargs=-1, type=click.Path(path_type=Path))
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path),
              help=f"TOML file whose [model] table configures the model (default: the "
              f"shipped {DEFAULT_CONFIG}).")  # fmt: skip
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The model file to write (e.g. model.fcm).")  # fmt: skip
@click.option("--topic", help="Train on a Kafka topic's range instead of files (never committed).")
@click.option("--bootstrap", help="Kafka bootstrap servers, for --topic.")
@click.option("--from-offset", type=click.IntRange(min=0), help="First offset (every partition).")
@click.option("--to-offset", type=click.IntRange(min=0), help="End offset, not included.")
@click.option("--holdout", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
              default=0.2, show_default=True,
              help="Last fraction of each series scored as held out.")  # fmt: skip
@click.option("--series-col", help="Series id column (default: series; else the file's stem).")
@click.option("--covariates", help="Covariate columns, comma-separated (default: the config's).")
@click.option("--quiet", is_flag=True, help="Print only the model file's id.")
def train_command(
    inputs: tuple[Path, ...], config: Path | None, out: Path, topic: str | None,
    bootstrap: str | None, from_offset: int | None, to_offset: int | None, holdout: float,
    series_col: str | None, covariates: str | None, quiet: bool,
) -> None:  # fmt: skip
    """Train the configured model on recorded history and write a model file.

    INPUT is a CSV or Parquet file or a folder of them (several may be given), or, with
    --topic, a topic's range: read as ``forecaster replay`` reads them, learned through
    the same loop and schedule with event time as the clock, every partition into one
    model. Deploy the file with ``replay --model`` or the service's ``[model] init``.
    """
    from pipelines.configs import load_model_config
    from pipelines.engine.recorded import Columns, InputError
    from pipelines.replay.run import read_input
    from pipelines.train.train import train

    path: ConfigFile = config or shipped(DEFAULT_CONFIG)
    cov = _names(covariates)
    try:
        cfg = load_model_config(path, **({"covariates": cov} if covariates is not None else {}))
    except ValueError as exc:
        _fail(str(exc))
    if out.is_dir():
        _fail(f"--out {out}: is a folder, give a file name (e.g. model.fcm)")
    if bool(inputs) == (topic is not None):
        _fail("give either INPUT (files or folders) or --topic, not both")
    files: list[Any] = []
    try:
        if topic is not None:
            from pipelines.kafka.topics import TopicRange, read_topic

            rng = TopicRange(topic, _kafka_settings(path, bootstrap, None), from_offset, to_offset)
            files, _ = read_topic(rng, cfg.covariates)
        for p in inputs:
            files += read_input(p, Columns(series=series_col, covariates=cfg.covariates))[0]
    except InputError as exc:
        _fail(str(exc))
    data, result = train(files, cfg, holdout)
    from pipelines.models.file import write_model

    try:
        model_id = write_model(out, data)
    except OSError as exc:
        _fail(f"--out {out}: {exc.strerror or exc}")
    if quiet:
        click.echo(model_id)
        return
    click.echo(f"wrote {out} (id {model_id}): {result.summary['events']:,} events of "
               f"{result.summary['series']} series")  # fmt: skip


@click.group("model")
def model_group() -> None:
    """Model files written by ``forecaster train`` (or ``replay --save-model``)."""


@model_group.command("show")
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the header as JSON (and the id).")
def show_command(path: Path, as_json: bool) -> None:
    """Print what a model file holds: its id, config, data, held-out scores."""
    from pipelines.models.file import ModelFileError, read_model

    try:
        mf = read_model(path)
    except ModelFileError as exc:
        _fail(str(exc))
    if as_json:
        arrays = {k: list(v.shape) for k, v in sorted(mf.arrays.items())}
        click.echo(json.dumps({"id": mf.id, **mf.header, "arrays": arrays}, indent=1))
        return
    _print_model(mf.id, mf.header)


def _print_model(model_id: str, h: dict[str, Any]) -> None:
    c, d = h["config"], h["data"]
    created = datetime.fromtimestamp(h["created_at"], UTC).isoformat(timespec="seconds")
    lines = [
        f"model file {model_id} (format {h['format']}, forecaster {h['version']}, "
        f"created {created})",
        f"config: horizon {c['horizon']}, {c['num_layers']} layer(s) of {c['hidden_size']}, "
        f"covariates {c['covariates'] or 'none'}, aggregation {c['aggregation']}",
        f"data: {d['events']:,} events of {d['series']} series from {len(d['inputs'])} "
        f"input(s), {d['span'][0]} to {d['span'][1]}",
        "inputs: " + ", ".join(d["inputs"]),
        f"retrains: {h['retrains']['started']} ({h['retrains']['accepted']} accepted)",
    ]
    for line in lines:
        click.echo(line)
    s = h["scores"]
    table = report_table(
        f"held-out scores: the last {s['holdout']:.0%} of each series, forecast before learned",
        ("step", "n", "MAE", "RMSE", "MASE", "coverage", "last value MAE",
         "seasonal naive MAE", "EWMA MAE"),
    )  # fmt: skip
    for r in s["steps"]:
        table.add_row(f"+{r['step']}", str(r["n"]), _fmt(r["mae"]), _fmt(r["rmse"]),
                      f"{r['mase']:.3f}", f"{r['coverage']:.3f}", _fmt(r["last value mae"]),
                      _fmt(r["seasonal naive mae"]), _fmt(r["ewma mae"]))  # fmt: skip
    wide_console(120).print(table)
    sys.stdout.flush()
