"""``forecaster bench drift`` and ``forecaster bench retrain``: the printed reports."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from pipelines.configs import ConfigFile, shipped
from pipelines.tables import report_table, wide_console

_CONFIG = click.Path(exists=True, dir_okay=False, path_type=Path)


def _run(bench: Callable[[], dict[str, Any]], as_json: bool) -> dict[str, Any] | None:
    """The benchmark's figures; ``None`` once printed as JSON. A bad config is a usage error."""
    try:
        result = bench()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return None
    return result


@click.command("drift")
@click.option("--config", "config_path", type=_CONFIG, default=None,
              help="TOML file whose [model] table configures both contenders "
                   "(default: the shipped sensors.toml).")  # fmt: skip
@click.option("--seeds", default="0,1,2", show_default=True,
              help="Seeds of the synthetic streams; every figure is the median.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every figure.")
def bench_drift_command(config_path: Path | None, seeds: str, as_json: bool) -> None:
    """Recovery after a change and retrains on steady data: drift trigger vs schedule alone."""
    from pipelines.bench import drift

    config: ConfigFile = config_path or shipped("sensors.toml")

    log = Console(stderr=True).log
    try:
        seed_list = tuple(int(x) for x in seeds.split(","))
    except ValueError as exc:
        msg = f"--seeds must be integers separated by commas, got {seeds!r}"
        raise click.UsageError(msg) from exc
    result = _run(lambda: drift.run(config, seed_list, progress=log), as_json)
    if result is None:
        return
    s, d = result["schedule"], result["drift"]
    table = report_table(
        f"Synthetic streams, the change at event {result['change_at']:,}; median of seeds "
        f"{seeds}; each pair: schedule alone / drift",
        ("stream", "retrains", "back after (events)", "drift / schedule", "+1 MAE after",
         "goal met"),
        left=("stream",),
    )  # fmt: skip
    for r in result["rows"]:
        back, ratio = "-", "-"
        if "retrain_ratio" in r:
            ratio = f"{r['retrain_ratio']:.2f} (retrains)"
        else:
            back = " / ".join(f"{v:,}" if v is not None else "never"
                              for v in (r["recovery_schedule"], r["recovery_drift"]))  # fmt: skip
            if r["recovery_ratio"] is not None:
                ratio = f"{r['recovery_ratio']:.2f}"
        table.add_row(r["stream"], f"{r['retrains_schedule']:g} / {r['retrains_drift']:g}", back,
                      ratio, f"{r['mae_schedule']:.4f} / {r['mae_drift']:.4f}",
                      "yes" if r["passes"] else "no")  # fmt: skip
    out = wide_console()
    out.print(table)
    out.print(
        f"back after: events after the change until the +1 MAE over the next "
        f"{result['window']} events is first within 10% of the post-change level (the "
        f"lower of the two runs' over the last {result['tail']:,}); +1 MAE after: over the "
        f"{result['first']:,} events after the change; the control's drift / schedule is "
        f"its retrains'"
    )
    out.print(
        f"schedule alone: a retrain every {s['retrain_every']:,} events and once at "
        f"{s['first_retrain']:,} ({Path(result['config']).name}); drift: the same, with "
        f'retrain_on = ["schedule", "drift"], the schedule\'s wait doubling up to '
        f"{result['retrain_every_max']:,} events, drift_threshold {d['drift_threshold']:g}, "
        f"drift_delta {d['drift_delta']:g}, drift_warmup {d['drift_warmup']}, drift_check "
        f"{d['drift_check']}, drift_min_spacing {d['drift_min_spacing']}, "
        f"drift_model_evidence_kept {d['drift_model_evidence_kept']:g}; streams of "
        f"{result['events']:,} events, the control {result['control_events']:,}"
    )
    for r in result["rows"]:
        if r.get("recovery_schedule") == 0 and r.get("recovery_drift") == 0:
            out.print(f"{r['stream']}: neither run's +1 MAE was ever more than 10% above "
                      "the post-change level, so there is no recovery to halve")  # fmt: skip
    out.print("goals: recovery with drift at most half the schedule's on each change; "
              "retrains on the control at most a fifth of the schedule's")  # fmt: skip
    out.print(f"passes: {str(result['passes']).lower()}")


@click.command("retrain")
@click.option("--config", "config_path", type=_CONFIG, default=None,
              help="TOML file whose [model] table configures both contenders "
                   "(default: the shipped sensors.toml).")  # fmt: skip
@click.option("--early-stop-every", default=10, show_default=True, type=click.IntRange(min=1),
              help="The new contender's early_stop_every.")  # fmt: skip
@click.option("--early-stop-patience", default=2, show_default=True, type=click.IntRange(min=1),
              help="The new contender's early_stop_patience.")  # fmt: skip
@click.option("--events", type=click.IntRange(min=1), help="Only the first N events.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every figure.")
def bench_retrain_command(config_path: Path | None, early_stop_every: int, early_stop_patience: int,
                          events: int | None, as_json: bool) -> None:  # fmt: skip
    """Where one retrain's time goes, before and after issue 14, side by side in one run."""
    from pipelines.bench import retrain
    from pipelines.bench.commands import _require_data

    config: ConfigFile = config_path or shipped("sensors.toml")

    _require_data()
    result = _run(
        lambda: retrain.run(config, early_stop_every, early_stop_patience, events), as_json
    )
    if result is None:
        return
    old, new = result["old"], result["new"]
    table = report_table(
        f"One retrain's time, mean over the retrains of {result['stream']} "
        f"({result['events']:,} events, {Path(result['config']).name}, inline, one BLAS thread)",
        ("phase", "old ms", "new ms", "new / old"), left=("phase",),
    )  # fmt: skip
    names = {
        "windows": "draw the windows (and copy what the job reads)",
        "training": f"training steps (old {old['mean_steps']:.0f}, new {new['mean_steps']:.1f} "
                    "on average)",
        "early_stop_evaluations": "  of which early-stopping evaluations",
        "scoring": "score the validation windows and the blend's mixes",
        "job_states": "rebuild states in the job",
        "swap_states": "rebuild states after the swap",
        "total": "one retrain",
    }  # fmt: skip
    for key, label in names.items():
        a, b = old["seconds_per_retrain"][key], new["seconds_per_retrain"][key]
        table.add_row(label, f"{1e3 * a:.1f}", f"{1e3 * b:.1f}", f"{b / a:.2f}" if a > 0 else "-")
    out = wide_console()
    out.print(table)
    k = "mae_last"
    out.print(
        f"retrains: old {old['retrains']} ({old['accepted']} accepted), new {new['retrains']} "
        f"({new['accepted']} accepted); training windows held per retrain: old "
        f"{old['window_mb']:.1f} MB, new {new['window_mb']:.1f} MB; new early_stop_every "
        f"{result['early_stop_every']}, early_stop_patience {result['early_stop_patience']}"
    )
    out.print(
        f"+1 / +{result['horizon']} MAE after a 10% warm-up: old {old['mae_1']:.4f} / "
        f"{old[k]:.4f}, new {new['mae_1']:.4f} / {new[k]:.4f}; whole run (learning "
        f"included): old {old['learn_seconds']:.1f} s, new {new['learn_seconds']:.1f} s"
    )
