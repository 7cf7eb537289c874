"""``forecaster run`` and ``forecaster feed``: the service's commands."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pipelines.tables import wide_console


@click.command("run")
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

    from pipelines.engine.checkpoint import CheckpointError
    from pipelines.engine.ports import SinkError
    from pipelines.service.assemble import build_service, stop_on_signals
    from pipelines.service.console import ForecastPrinter
    from pipelines.service.settings import load_settings

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("kafka").setLevel(max(logging.INFO, logging.getLogger().level))
    stop = threading.Event()
    stop_on_signals(stop)
    from pipelines.models.file import ModelFileError

    try:
        settings = load_settings(config_path)
        service = build_service(settings, stop=stop)
    except ModelFileError as exc:  # one line, as replay --model says it
        click.echo(f"error: [model] init {exc}", err=True)
        sys.exit(2)
    except (ValueError, OSError) as exc:  # OSError: the metrics port is taken
        raise click.UsageError(str(exc)) from exc
    if service.metrics_url is not None:
        click.echo(f"metrics: {service.metrics_url} (also /healthz and /readyz)")
    if settings.service.print_forecasts:
        service.runner.listeners.append(ForecastPrinter(wide_console()))
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


@click.command("feed")
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
    from pipelines.kafka.producers import make_producer
    from pipelines.service.feed import feed, kafka_feed, load_recordings
    from pipelines.service.settings import load_settings

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
