"""``forecaster bench kafka``, ``soak``, ``replay``, ``checkpoints``: the streaming benchmarks.

They stream through a Kafka broker or replay a recorded file, and print their tables;
``checkpoints`` writes and restores a fleet's checkpoint through both stores.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from pipelines.configs import shipped
from pipelines.tables import json_option, print_json, report_table, wide_console


def broker_options(command: Callable[..., None]) -> Callable[..., None]:
    """``--bootstrap`` and ``--api-version``: a broker of the user's, or the local one."""
    version = click.option("--api-version", default="auto", show_default=True,
                           help="The broker's protocol version with --bootstrap.")  # fmt: skip
    command = version(command)
    return click.option(
        "--bootstrap", help="A broker to use (host:port); default: start the local one."
    )(command)


@click.command("kafka")
@broker_options
@click.option("--series", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--events-per-series", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The service's TOML settings (the model; the broker comes from the options; "
    "default: the shipped fleet.toml).",
)  # fmt: skip
@json_option
def bench_kafka(bootstrap: str | None, api_version: str, series: int, events_per_series: int,
                rounds: int, config_path: Path | None, as_json: bool) -> None:  # fmt: skip
    """The full service's events/s beside a bare consumer's, on the same broker and topic."""
    from pipelines.bench import kafka

    try:
        result = kafka.run(bootstrap, api_version, series, events_per_series, rounds,
                           config_path or shipped("fleet.toml"))  # fmt: skip
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    if print_json(result, as_json):
        return
    table = report_table(
        f"{result['events']:,} events of {result['series']:,} series, "
        f"{result['partitions']} partitions, median of {result['rounds']} rounds",
        ("reader", "events/s", "of bare"), left=("reader",),
    )  # fmt: skip
    bare, full = result["bare_events_per_s"], result["service_events_per_s"]
    table.add_row("bare kafka-python consumer (poll only)", f"{bare:,.0f}", "100%")
    table.add_row("forecaster service (consume, decode, learn, forecast, produce, commit)",
                  f"{full:,.0f}", f"{result['service_over_bare']:.0%}")  # fmt: skip
    river = result["river_events_per_s"]
    table.add_row("River loop (kafka-python, SNARIMAX learn_one + forecast per series, produce)",
                  f"{river:,.0f}", f"{river / bare:.0%}")  # fmt: skip
    out = wide_console()
    out.print(table)
    d = result["decode"]
    out.print(
        f"decoding, us/message: ours {d['decoder_us']:.2f} (orjson parse alone "
        f"{d['orjson_parse_us']:.2f}; the standard json module's {d['json_parse_us']:.2f})"
    )
    b = result["budget"]
    cost = report_table(
        "CPU time per event, by stage (measured in the same run)",
        ("stage", "service us/event", "River loop us/event"), left=("stage",),
    )  # fmt: skip
    st, model, rv = b["stages_us"], result["model"], result["river_stages_us"]
    for name, us, river_us in (
        ("read (the bare consumer's CPU time)", st["read_us"], rv["read_us"]),
        ("decode the event (orjson and checks)", st["decode_us"], rv["decode_us"]),
        ("learn and forecast (retraining off)", st["learn_us"], rv["learn_us"]),
        (f"retrain ({model['retrain_seconds']:.2f} s, spread over its schedule)",
         st["retrain_us"], 0.0),
        ("encode the forecast message", st["encode_us"], rv["encode_us"]),
        (f"produce it (the service: {result['producer']}; River: kafka-python; CPU time "
         f"until flushed)", st["produce_us"], rv["produce_us"]),
        ("all stages", b["cpu_us"], sum(rv.values())),
    ):  # fmt: skip
        cost.add_row(name, f"{us:.2f}", f"{river_us:.2f}")
    out.print(cost)
    goal = result["goal"]
    out.print(
        f"at {goal:.0%} of the bare rate an event may take {b['bare_us'] / goal:.2f} us, "
        f"so this machine's {b['cores']} cores give it {b['goal_allows_cpu_us']:.2f} us "
        f"of CPU time; the stages need {b['cpu_us']:.2f}. Split over the cores with no "
        f"overhead at all, the service could keep at most {b['best_ratio_all_cores']:.0%} "
        f"of the bare rate here ({b['best_ratio_all_cores_free_producer']:.0%} with a free "
        f"producer, {b['best_ratio_all_cores_free_producer_no_retrain']:.0%} with a free "
        f"producer and no retraining); on one core {b['best_ratio_one_core']:.0%}"
    )
    other = result["other_produce"]
    out.print(
        f"{result['other_producer']}'s producer instead: {other['cpu_us']:.2f} us of CPU a "
        f"message, so at most {b['best_ratio_all_cores_other_producer']:.0%} of the bare rate "
        f"({b['best_ratio_all_cores_other_producer_no_retrain']:.0%} with no retraining)"
    )
    verdict = "met" if result["service_over_bare"] >= result["goal"] else "not met"
    out.print(f"goal: the service keeps at least {result['goal']:.0%} of the bare rate: {verdict}")
    ratio, goal = result["service_over_river"], result["river_goal"]
    out.print(f"goal: the service at least {goal:g}x the River loop's events/s: {ratio:.2f}x, "
              f"{'met' if ratio >= goal else 'not met'}")  # fmt: skip


@click.command("soak")
@click.option("--events", default=10_000_000, show_default=True, type=click.IntRange(min=1))
@click.option("--series", default=10_000, show_default=True, type=click.IntRange(min=1))
@click.option("--rate", default=5000.0, show_default=True, type=click.FloatRange(min=0.0),
              help="Events per second sent (0: as fast as the producer goes).")  # fmt: skip
@click.option("--sample-seconds", default=60.0, show_default=True,
              type=click.FloatRange(min=0.1), help="Length of a reporting window.")  # fmt: skip
@click.option(
    "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Settings (default: the shipped fleet.toml, a model made for thousands of series).",
)  # fmt: skip
@click.option("--bootstrap", help="A broker to use (host:port); default: start the local one.")
@click.option("--api-version", default="auto", show_default=True)
@json_option
def bench_soak(events: int, series: int, rate: float, sample_seconds: float,
               config_path: Path | None,
               bootstrap: str | None, api_version: str, as_json: bool) -> None:  # fmt: skip
    """Millions of events through the broker: memory and latency per window, over time."""
    from pipelines.bench import soak

    try:
        result = soak.run(events, series, rate, sample_seconds,
                          config_path or shipped("fleet.toml"), bootstrap,
                          api_version, on_window=lambda r: click.echo(
                              f"t {r['t']:.0f} s: {r['events_per_s']:,.0f} events/s, latency "
                              f"p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms, RSS "
                              f"{r['rss_mb']:.0f} MB", err=True))  # fmt: skip
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    if print_json(result, as_json):
        return
    table = report_table(
        f"{events:,} events of {series:,} series at {rate:,.0f}/s, windows of {sample_seconds:g} s",
        ("t (s)", "events/s", "latency p50 ms", "latency p99 ms", "RSS MB"),
        rows=[(f"{r['t']:.0f}", f"{r['events_per_s']:,.0f}", f"{r['p50_ms']:.1f}",
               f"{r['p99_ms']:.1f}", f"{r['rss_mb']:.0f}") for r in result["windows"]],
    )  # fmt: skip
    out = wide_console()
    out.print(table)
    out.print(
        f"{result['forecasts']:,} forecasts for {result['events']:,} events "
        f"(rejected: {result['rejected'] or 'none'}), {result['events_per_s']:,.0f} events/s "
        f"overall; model state {result['state_mb']:.0f} MB; RSS floor growth from the "
        f"second quarter to the last {result['rss_floor_growth_mb']:+.0f} MB, peak "
        f"{result['rss_peak_mb']:.0f} MB"
    )


@click.command("replay")
@click.option(
    "--file", "path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="A timestamp,value CSV (default: NAB machine_temperature_system_failure).",
)  # fmt: skip
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file with a [model] table (default: the shipped sensors.toml).",
)
@click.option("--horizon", type=click.IntRange(min=1), default=12, show_default=True)
@click.option("--rows", type=click.IntRange(min=100), help="Only the first ROWS rows.")
@click.option(
    "--panel", default="all", show_default=True,
    help="Panel streams to replay beside SNARIMAX too (parts of file names, comma-separated; "
    "'none': skip).",
)  # fmt: skip
@json_option
def bench_replay(path: Path | None, config_path: Path | None, horizon: int, rows: int | None,
                 panel: str, as_json: bool) -> None:  # fmt: skip
    """Replay throughput (events/s, parsing included) and scores beside River.

    River's SNARIMAX and HoltWinters run on the same file and horizon, in the same run;
    then each panel stream is replayed beside SNARIMAX, stream by stream.
    """
    from pipelines.bench import replay as bench
    from pipelines.bench.accuracy import select
    from pipelines.bench.datasets import NAB, data_root
    from pipelines.configs import load_model_config

    if path is None:
        path = data_root() / NAB / "machine_temperature_system_failure.csv"
    if not path.is_file():
        msg = f"{path}: no such file; set FORECASTER_DATA to the shared/data folder or pass --file"
        raise click.UsageError(msg)
    try:
        cfg = load_model_config(config_path or shipped("sensors.toml"), horizon=horizon)
        streams = () if panel == "none" else select(None if panel == "all" else panel)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    result = bench.run(path, cfg, rows)
    log = Console(stderr=True).log
    result["panel"] = (bench.run_panel(cfg, streams, data_root(), progress=log)
                       if streams else None)  # fmt: skip
    if print_json(result, as_json):
        return
    k = result["horizon"]
    table = report_table(
        f"Replay vs River on {path.name} (horizon {k}), parsing included; MAE after a "
        f"{result['warmup']:.0%} warm-up",
        ("contender", "events", "seconds", "events/s", "vs SNARIMAX", "MAE +1", f"MAE +{k}",
         "River's own MAE +1", f"River's own MAE +{k}"),
        left=("contender",),
    )  # fmt: skip
    for r in result["rows"]:
        own = [r["river_mae_1"], r[f"river_mae_{k}"]]
        table.add_row(
            r["name"], f"{r['events']:,}", f"{r['seconds']:.2f}", f"{r['events_per_second']:,.0f}",
            f"{r['vs_snarimax']:.2f}x", f"{r['mae_1']:.4g}", f"{r[f'mae_{k}']:.4g}",
            *(f"{v:.4g}" if v is not None else "-" for v in own),
        )  # fmt: skip
    console = wide_console(140)
    console.print(table)
    console.print(f"goal: {result['goal']}; measured {result['ratio']:.2f}x", highlight=False)
    b = result["budget"]
    console.print(
        f"the goal allows {b['goal_allows_seconds']:.3f} s for the whole file; the shipped "
        f"config retrained {b['retrains']:.0f} times at {b['seconds_per_retrain']:.3f} s each, "
        f"so one retrain alone is {b['one_retrain_over_allowed']:.2f}x that",
        highlight=False,
    )
    console.print(f"retraining off: {result['ratio_no_retrain']:.2f}x SNARIMAX (goal 5x)",
                  highlight=False)  # fmt: skip
    if result["panel"] is not None:
        _print_panel(result["panel"], console)


def _print_panel(p: dict[str, Any], console: Console) -> None:
    """The panel's streams, each replayed beside River SNARIMAX."""
    console.print(report_table(
        "The panel, stream by stream: replay (shipped config) beside River SNARIMAX, "
        "parsing included",
        ("stream", "events", "retrains", "replay events/s", "SNARIMAX events/s", "ratio"),
        left=("stream",),
        rows=[(r["stream"], f"{r['events']:,}", str(r["retrains"]),
               f"{r['events_per_second']:,.0f}", f"{r['river_events_per_second']:,.0f}",
               f"{r['ratio']:.2f}x") for r in p["rows"]],
    ))  # fmt: skip
    console.print(
        f"whole panel: {p['events']:,} events, replay {p['events_per_second']:,.0f} events/s, "
        f"SNARIMAX {p['river_events_per_second']:,.0f}: {p['ratio']:.2f}x (goal 1.0x); "
        f"streams at or above 1.0x: {p['streams_at_or_above_1x']} of {len(p['rows'])}",
        highlight=False,
    )


@click.command("checkpoints")
@broker_options
@click.option("--series", default="1000,10000", show_default=True,
              help="Comma-separated fleet sizes.")  # fmt: skip
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML settings whose [model] is measured (default: the shipped fleet.toml).",
)  # fmt: skip
@json_option
def bench_checkpoints(bootstrap: str | None, api_version: str, series: str, rounds: int,
                      config_path: Path | None, as_json: bool) -> None:  # fmt: skip
    """Checkpoint write time, bytes and restore time: folder store beside Kafka store."""
    from pipelines.bench import checkpoints

    try:
        sizes = tuple(int(s) for s in series.split(","))
    except ValueError:
        msg = f"--series must be comma-separated integers, got {series!r}"
        raise click.UsageError(msg) from None
    if not sizes or min(sizes) < 1:
        msg = f"--series must be integers >= 1, got {series!r}"
        raise click.UsageError(msg)
    try:
        result = checkpoints.run(config_path or shipped("fleet.toml"), sizes, rounds,
                                 bootstrap, api_version)  # fmt: skip
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    if print_json(result, as_json):
        return
    table = report_table(
        f"One partition's checkpoint, {Path(result['config']).name}, median of "
        f"{result['rounds']} rounds (Kafka: acks=all, {result['max_message_bytes']:,}-byte "
        "messages)",
        ("series", "store", "write s", "bytes", "restore s"), left=("store",),
    )  # fmt: skip
    for row in result["rows"]:
        for name in ("folder", "kafka"):
            r = row[name]
            table.add_row(f"{row['series']:,}", name, f"{r['write_seconds']:.3f}",
                          f"{r['bytes']:,}", f"{r['restore_seconds']:.3f}")  # fmt: skip
    out = wide_console()
    out.print(table)
    for row in result["rows"]:
        out.print(f"{row['series']:,} series: snapshot {row['snapshot_bytes']:,} bytes, taken in "
                  f"{row['snapshot_seconds']:.3f} s (before either store)")  # fmt: skip
