"""The ``forecaster`` command: the group, and where each of its commands lives.

``run`` and ``feed`` are the service's (:mod:`pipelines.service.commands`), ``replay``
the backtest's (:mod:`pipelines.replay.command`), ``train`` and ``model`` the model
files' (:mod:`pipelines.train.command`), and ``bench`` the benchmarks'
(:mod:`pipelines.bench.commands`).
"""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="gru-stream-forecaster")
def main() -> None:
    """Streaming time-series forecasting with a per-series GRU state."""


def _register() -> None:
    from pipelines.bench.commands import bench
    from pipelines.replay.command import replay_command
    from pipelines.service.commands import feed_cmd, run
    from pipelines.train.command import model_group, train_command

    for command in (run, feed_cmd, replay_command, train_command, model_group, bench):
        main.add_command(command)


_register()
