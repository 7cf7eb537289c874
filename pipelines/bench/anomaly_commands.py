"""``forecaster bench anomalies``: the printed report (:mod:`pipelines.bench.anomalies`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from pipelines.configs import ConfigFile, shipped
from pipelines.tables import json_option, print_json, report_table, wide_console


def _pair(m: dict[str, Any], z: dict[str, Any]) -> tuple[str, str, str]:
    """Caught, first-flag delay and false flags a day, model / z-score."""

    def delay(p: dict[str, Any]) -> str:
        if "median_delay_h" in p:
            d = p["median_delay_h"]
        else:
            got = [x for x in p["delays_h"] if x is not None]
            d = sorted(got)[len(got) // 2] if got else None
        return "-" if d is None else f"{d:.1f}"

    return (f"{m['caught']}/{m['windows']} / {z['caught']}/{z['windows']}",
            f"{delay(m)} / {delay(z)}",
            f"{m['false_per_day']:.2f} / {z['false_per_day']:.2f}")  # fmt: skip


@click.command("anomalies")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), default=None,
              help="TOML file whose [model] table configures the model and its anomaly "
                   "settings (default: the shipped sensors.toml).")  # fmt: skip
@click.option(
    "--level",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    help="anomaly_level for every stream (default: the config's).",
)
@json_option
def bench_anomalies(config_path: Path | None, level: float | None, as_json: bool) -> None:
    """Flags on NAB's labelled anomaly windows: the model's beside a rolling z-score's."""
    from pipelines.bench import anomalies
    from pipelines.bench.commands import _require_data

    _require_data()
    config: ConfigFile = config_path or shipped("sensors.toml")
    try:
        result = anomalies.run(config, level, progress=Console(stderr=True).log)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if print_json(result, as_json):
        return
    table = report_table(
        "NAB windows of the panel; each pair: model / z-score (3 sd over the last day)",
        ("stream", "events", "windows caught", "first flag after (h, median)",
         "false flags / day"),
        left=("stream",),
    )  # fmt: skip
    for r in result["rows"]:
        table.add_row(r["stream"], f"{r['events']:,}", *_pair(r["model"], r["zscore"]))
    m, z = result["total"]["model"], result["total"]["zscore"]
    table.add_row("total", f"{sum(r['events'] for r in result['rows']):,}", *_pair(m, z))
    out = wide_console()
    out.print(table)
    settings = ", ".join(f"{k} {v}" for k, v in result["settings"].items())
    out.print(f"model: {Path(str(config)).name}, {settings}; every stream learned alone")
    out.print("false flags / day: flags outside every window, per day outside the windows")
    out.print("goal: at least the z-score's windows caught with at most half its false flags "
              "per day")  # fmt: skip
    out.print(f"goal met: {'yes' if result['goal_met'] else 'no'}")
