"""The ``forecaster`` command line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table


def _table(title: str, columns: tuple[str, ...], left: tuple[str, ...] = ()) -> Table:
    """A report table: ``left`` columns left-aligned, the figures right-aligned."""
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="left" if col in left else "right")
    return table


def _require_data() -> None:
    """Fail with a usage error, not a traceback, when the recordings are not there."""
    from pipelines.datasets import data_root

    root = data_root()
    if not (root / "NAB").is_dir() or not (root / "ETDataset").is_dir():
        msg = f"evaluation data not found in {root}; set FORECASTER_DATA to the shared/data folder"
        raise click.UsageError(msg)


def _console() -> Console:
    """Standard output, at least 110 columns wide so report tables never wrap."""
    return Console(width=max(Console().width, 110))


@click.group()
@click.version_option(package_name="gru-stream-forecaster")
def main() -> None:
    """Streaming time-series forecasting with a per-series GRU state."""


@main.group()
def bench() -> None:
    """Benchmarks, measured side by side in one run on this machine."""


@bench.command("accuracy")
@click.option(
    "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=Path(__file__).resolve().parents[1] / "config" / "sensors.toml", show_default=True,
    help="TOML file whose [model] table configures the GRU.",
)  # fmt: skip
@click.option("--seeds", default="0,1,2", show_default=True, help="Seeds; the median is scored.")
@click.option(
    "--jobs", type=click.IntRange(min=1), default=os.cpu_count() or 1, show_default="CPU count",
    help="Processes running the GRU's (stream, seed) pairs; figures do not depend on it.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every figure.")
def bench_accuracy(config_path: Path, seeds: str, jobs: int, as_json: bool) -> None:
    """Prequential MAE at +1 and +12 on the public recordings, beside three baselines."""
    from pipelines.benchmarks import accuracy
    from pipelines.modelconfig import load_model_config

    _require_data()
    try:
        cfg = load_model_config(config_path, background=False)
        seed_list = tuple(int(s) for s in seeds.split(","))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    console = Console(stderr=True)
    result = accuracy.run(
        cfg, seed_list, progress=lambda name: console.log(f"scoring {name}"), jobs=jobs
    )
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    table = Table(
        title=f"Prequential MAE after a 10% warm-up ({config_path.name}, median of seeds {seeds})"
    )
    for col in ("stream", "GRU +1", "best +1", "ratio", "GRU +12", "best +12", "ratio", "coverage"):
        table.add_column(col, justify="left" if col == "stream" else "right")
    for r in result["rows"]:
        table.add_row(
            r["stream"], f"{r['gru+1']:.4g}", f"{r['best+1']:.4g}", f"{r['ratio+1']:.3f}",
            f"{r['gru+12']:.4g}", f"{r['best+12']:.4g}", f"{r['ratio+12']:.3f}",
            f"{r['coverage_min']:.3f}-{r['coverage_max']:.3f}",
        )  # fmt: skip
    out = _console()
    out.print(table)
    for key, value in result["verdict"].items():
        out.print(f"{key}: {value}")


@bench.command("faults")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every figure.")
def bench_faults(as_json: bool) -> None:
    """+1 errors before and after 300 events of a fault, with the shipped config."""
    from pipelines.benchmarks import faults

    rows = faults.run()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    cols = ("fault", "before", *(f"+{b}-{b + 100}" for b in faults.BLOCKS), "retrains rejected")
    table = _table(f"+1 MAE per 100 events, before and after {faults.FAULT} events of a fault",
                   cols, left=("fault",))  # fmt: skip
    for r in rows:
        table.add_row(r["fault"], f"{r['before']:.3g}", *(f"{v:.3g}" for v in r["after"].values()),
                      f"{r['rejected']} of {r['retrains']}")  # fmt: skip
    _console().print(table)


@bench.command("scale")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every figure.")
@click.option("--quick", is_flag=True, help="Two small sizes: a smoke test, not a measurement.")
def bench_scale(as_json: bool, quick: bool) -> None:
    """Per-event cost and memory per series, from 1,000 to 100,000 series."""
    from pipelines.benchmarks import scale

    result = scale.run(quick=quick)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    table = _table(
        f"Per-event cost as series grow (batches of {result['batch']:,} events)",
        ("series", "us/event", "bytes/series", "state MB", "max RSS MB"),
    )
    for r in result["rows"]:
        table.add_row(
            f"{r['series']:,}", f"{r['us_per_event']:.2f}", f"{r['bytes_per_series']:,}",
            f"{r['state_mb']:.0f}", f"{r['max_rss_mb']:.0f}",
        )  # fmt: skip
    out = _console()
    out.print(table)
    ratio = result["cost_ratio_largest_to_smallest"]
    out.print(f"cost per event, largest / smallest: {ratio:.2f}x")


@bench.command("etth1")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=Path(__file__).resolve().parents[1] / "config" / "etth1.toml",
    show_default=True,
    help="TOML file whose [model] table configures the GRU (horizon is set per run).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every figure.")
def bench_etth1(config_path: Path, as_json: bool) -> None:
    """ETTh1 on the published protocol (OT, z-scored, H=24 and 96), frozen and online."""
    from pipelines.benchmarks import etth1
    from pipelines.modelconfig import load_model_config

    _require_data()
    try:
        cfg = load_model_config(config_path)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    result = etth1.run(cfg)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    table = _table(
        "ETTh1 OT, published protocol: MSE / MAE over steps 1..H (test rows)",
        ("H", "last value", "GRU frozen", "GRU online", "published"),
        left=("published",),
    )
    for r in result["rows"]:
        pub = ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in r["published"].items())
        cells = [f"{r[k][0]:.4f} / {r[k][1]:.4f}" for k in ("last value", "frozen", "online")]
        table.add_row(str(r["horizon"]), *cells, pub)
    _console().print(table)


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
    table = _table(
        "GRU kernels vs PyTorch (one thread, float64, medians)",
        ("case", "unit", "ours", "torch", "speedup", "lower bound", "of bound"),
        left=("case", "unit"),
    )
    for r in result["rows"]:
        table.add_row(
            r["name"], r["unit"], f"{r['ours_us']:.3f}", f"{r['torch_us']:.3f}",
            f"{r['speedup']:.1f}x", f"{r['bound_us']:.3f}", f"{r['fraction_of_bound']:.0%}",
        )  # fmt: skip
    console = _console()
    console.print(table)
    console.print(
        f"numba {m['numba']}, torch {m['torch']} ({m['torch_threads']} thread), "
        f"one-thread matmul {m['matmul_gflops_1thread']:.1f} GFLOP/s (the lower bound's divisor)"
    )


@main.command("run")
@click.option(
    "--config", "config_path", required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML settings (config/sensors.toml documents every key).",
)  # fmt: skip
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))  # fmt: skip
@click.option("--exit-when-idle", default=0.0, show_default=True, metavar="SECONDS",
              type=click.FloatRange(min=0.0),
              help="Also stop once no event has arrived for this long (0: never).")  # fmt: skip
def run(config_path: Path, log_level: str, exit_when_idle: float) -> None:
    """Consume events from Kafka and produce forecasts until SIGTERM or SIGINT."""
    import logging
    import threading

    from pipelines.checkpoint import CheckpointError
    from pipelines.console import ForecastPrinter
    from pipelines.service import build_service, stop_on_signals
    from pipelines.settings import load_settings
    from pipelines.sinks import SinkError

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kafka").setLevel(max(logging.INFO, logging.getLogger().level))
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        settings = load_settings(config_path)
        service = build_service(settings, stop=stop)
    except (ValueError, OSError) as exc:  # OSError: the metrics port is taken
        raise click.UsageError(str(exc)) from exc
    if service.metrics_url is not None:
        click.echo(f"metrics: {service.metrics_url} (also /healthz and /readyz)")
    if settings.service.print_forecasts:
        service.runner.listeners.append(ForecastPrinter(_console()))
    try:
        stats = service.run(exit_when_idle)
    except CheckpointError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except SinkError as exc:
        click.echo(f"error: the last forecasts were not delivered ({exc}); no checkpoint or "
                   "commit covers them, so a restart issues them again", err=True)  # fmt: skip
        sys.exit(1)
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(stats.rejected.items())) or "none"
    click.echo(
        f"stopped: {stats.events} events, {stats.forecasts} forecasts, rejected: {rejected}; "
        f"{stats.checkpoints} partition checkpoints in {stats.commits} commit(s)"
    )


@main.command("feed")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))  # fmt: skip
@click.option(
    "--config", "config_path", required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The service's TOML settings: [kafka] and [topics] input are used.",
)  # fmt: skip
@click.option("--rate", default=2000.0, show_default=True, type=click.FloatRange(min=0.0),
              help="Events per second (0: as fast as possible).")  # fmt: skip
@click.option("--limit", type=click.IntRange(min=1), help="Send only the first N events.")
def feed_cmd(files: tuple[Path, ...], config_path: Path, rate: float, limit: int | None) -> None:
    """Play timestamp,value CSV recordings into the input topic, one series per file."""
    from pipelines.feed import feed, kafka_feed, load_recordings
    from pipelines.kafka_io import make_producer
    from pipelines.settings import load_settings

    try:
        settings = load_settings(config_path)
        events = load_recordings(files, limit)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    topic = settings.topics.input
    producer = make_producer(settings.kafka)
    try:
        n = feed(*kafka_feed(producer, topic), events, rate)
    finally:
        producer.close()
    click.echo(f"fed {n} events of {len(files)} series to {topic!r}")


@bench.command("kafka")
@click.option("--bootstrap", help="A broker to use (host:port); default: start the local one.")
@click.option("--api-version", default="auto", show_default=True,
              help="The broker's protocol version with --bootstrap.")  # fmt: skip
@click.option("--series", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--events-per-series", default=100, show_default=True, type=click.IntRange(min=1))
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=Path(__file__).resolve().parents[1] / "config" / "fleet.toml", show_default=True,
    help="The service's TOML settings (the model; the broker comes from the options).",
)  # fmt: skip
@click.option(
    "--librdkafka", is_flag=True,
    help="Also time librdkafka's producer (pip install confluent-kafka; not a dependency).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every figure.")
def bench_kafka(bootstrap: str | None, api_version: str, series: int, events_per_series: int,
                rounds: int, config_path: Path, librdkafka: bool,
                as_json: bool) -> None:  # fmt: skip
    """The full service's events/s beside a bare consumer's, on the same broker and topic."""
    from pipelines.benchmarks import kafka

    try:
        result = kafka.run(bootstrap, api_version, series, events_per_series, rounds, config_path,
                           librdkafka)  # fmt: skip
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    table = _table(
        f"{result['events']:,} events of {result['series']:,} series, "
        f"{result['partitions']} partitions, median of {result['rounds']} rounds",
        ("reader", "events/s", "of bare"), left=("reader",),
    )  # fmt: skip
    bare, full = result["bare_events_per_s"], result["service_events_per_s"]
    table.add_row("bare kafka-python consumer (poll only)", f"{bare:,.0f}", "100%")
    table.add_row("forecaster service (consume, decode, learn, forecast, produce, commit)",
                  f"{full:,.0f}", f"{result['service_over_bare']:.0%}")  # fmt: skip
    out = _console()
    out.print(table)
    d = result["decode"]
    out.print(
        f"decoding, us/message: ours {d['decoder_us']:.2f} (orjson parse alone "
        f"{d['orjson_parse_us']:.2f}; the standard json module's {d['json_parse_us']:.2f})"
    )
    b = result["budget"]
    cost = _table(
        "CPU time per event, by stage (measured in the same run)",
        ("stage", "us/event"), left=("stage",),
    )  # fmt: skip
    st, model = b["stages_us"], result["model"]
    for name, us in (
        ("read (the bare consumer's CPU time)", st["read_us"]),
        ("decode the event (orjson and checks)", st["decode_us"]),
        ("learn and forecast (the model, retraining off)", st["learn_us"]),
        (f"retrain ({model['retrain_seconds']:.2f} s, spread over its schedule)",
         st["retrain_us"]),
        ("encode the forecast message", st["encode_us"]),
        ("produce it (kafka-python's CPU time, until flushed)", st["produce_us"]),
        ("all stages", b["cpu_us"]),
    ):  # fmt: skip
        cost.add_row(name, f"{us:.2f}")
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
    c_produce = result["librdkafka_produce"]
    if c_produce is not None:
        out.print(
            f"librdkafka's producer instead: {c_produce['cpu_us']:.2f} us of CPU a message, "
            f"so at most {b['best_ratio_all_cores_librdkafka']:.0%} of the bare rate "
            f"({b['best_ratio_all_cores_librdkafka_no_retrain']:.0%} with no retraining)"
        )
    verdict = "met" if result["service_over_bare"] >= result["goal"] else "not met"
    out.print(f"goal: the service keeps at least {result['goal']:.0%} of the bare rate: {verdict}")


@bench.command("soak")
@click.option("--events", default=10_000_000, show_default=True, type=click.IntRange(min=1))
@click.option("--series", default=10_000, show_default=True, type=click.IntRange(min=1))
@click.option("--rate", default=5000.0, show_default=True, type=click.FloatRange(min=0.0),
              help="Events per second sent (0: as fast as the producer goes).")  # fmt: skip
@click.option("--sample-seconds", default=60.0, show_default=True,
              type=click.FloatRange(min=0.1), help="Length of a reporting window.")  # fmt: skip
@click.option(
    "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=Path(__file__).resolve().parents[1] / "config" / "fleet.toml", show_default=True,
    help="Settings; the fleet model, made for thousands of series.",
)  # fmt: skip
@click.option("--bootstrap", help="A broker to use (host:port); default: start the local one.")
@click.option("--api-version", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every figure.")
def bench_soak(events: int, series: int, rate: float, sample_seconds: float, config_path: Path,
               bootstrap: str | None, api_version: str, as_json: bool) -> None:  # fmt: skip
    """Millions of events through the broker: memory and latency per window, over time."""
    from pipelines.benchmarks import soak

    try:
        result = soak.run(events, series, rate, sample_seconds, config_path, bootstrap,
                          api_version, on_window=lambda r: click.echo(
                              f"t {r['t']:.0f} s: {r['events_per_s']:,.0f} events/s, latency "
                              f"p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms, RSS "
                              f"{r['rss_mb']:.0f} MB", err=True))  # fmt: skip
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    table = _table(
        f"{events:,} events of {series:,} series at {rate:,.0f}/s, windows of {sample_seconds:g} s",
        ("t (s)", "events/s", "latency p50 ms", "latency p99 ms", "RSS MB"),
    )
    for r in result["windows"]:
        table.add_row(f"{r['t']:.0f}", f"{r['events_per_s']:,.0f}", f"{r['p50_ms']:.1f}",
                      f"{r['p99_ms']:.1f}", f"{r['rss_mb']:.0f}")  # fmt: skip
    out = _console()
    out.print(table)
    out.print(
        f"{result['forecasts']:,} forecasts for {result['events']:,} events "
        f"(rejected: {result['rejected'] or 'none'}), {result['events_per_s']:,.0f} events/s "
        f"overall; model state {result['state_mb']:.0f} MB; RSS floor growth from the "
        f"second quarter to the last {result['rss_floor_growth_mb']:+.0f} MB, peak "
        f"{result['rss_peak_mb']:.0f} MB"
    )


def _register() -> None:
    """Commands that live in their own modules."""
    from pipelines.replay_cmd import bench_replay_command, replay_command
    from pipelines.retrain_cmd import bench_drift_command, bench_retrain_command

    main.add_command(replay_command)
    bench.add_command(bench_replay_command)
    bench.add_command(bench_drift_command)
    bench.add_command(bench_retrain_command)


_register()
