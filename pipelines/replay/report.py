"""The replay's report folder: forecasts, scores, summary, plots (PNG) and one HTML page.

Plots are drawn with matplotlib's Agg backend (files only, no display):

- ``forecast.png``: a series' actual values and the forecast made ``plot_step`` events
  earlier, with its interval band and the events flagged as anomalies, over the whole
  replay and over its last stretch, and where each retrain of its partition's model
  started, coloured by its reason;
- ``error_by_horizon.png``: MAE per step ahead, the model(s) and each baseline;
- ``training_loss.png``: each retrain's training loss and its validation loss before
  and after (rejected retrains marked), per configuration.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forecaster.core import F64Array
from pipelines.replay.run import Forecasts, Replay, ReplayOptions, Run, forecasts_path
from pipelines.replay.scoring import BASELINES, prior_index

ZOOM = 500  # events in the close-up of the forecast plot
REASON_COLORS = {"first": "tab:gray", "schedule": "tab:green", "drift": "tab:red",
                 "manual": "tab:purple"}  # fmt: skip
_PNG_META = {"Software": None}  # no version stamp: the same run draws the same bytes


def write_forecasts(fc: Forecasts, path: Path, fmt: str) -> None:
    """The forecasts table, byte for byte the same for the same run (Parquet or CSV)."""
    df = fc.to_frame()
    if fmt == "csv":
        df["ts"] = df["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
        df.to_csv(path, index=False, lineterminator="\n")
    else:
        df.to_parquet(path, index=False, compression="zstd")


def write_report(result: Replay, opts: ReplayOptions, out: Path) -> list[Path]:
    """Write the forecasts, ``scores.csv``, ``summary.json``, the plots and ``report.html``.

    Returns every file written, all in the folder ``out`` (made if missing).
    """
    out.mkdir(parents=True, exist_ok=True)
    several = len(result.runs) > 1
    written = []
    for run in result.runs:
        written.append(forecasts_path(out, run.label, opts.fmt, several))
        write_forecasts(run.forecasts, written[-1], opts.fmt)
    written.append(out / "scores.csv")
    result.scores.to_csv(written[-1], index=False, lineterminator="\n")
    path = out / "summary.json"
    path.write_text(json.dumps(result.summary, indent=1) + "\n")
    written.append(path)
    if opts.plots:
        import matplotlib

        matplotlib.use("Agg")
        plots = [plot_forecast(run, opts.plot_step, out, several) for run in result.runs]
        plots.append(plot_error_by_horizon(result, out / "error_by_horizon.png"))
        plots.append(plot_training_loss(result.runs, out / "training_loss.png"))
        if any(run.history.expert_weights for run in result.runs):
            path = out / "expert_weights.png"
            plots.append(plot_expert_weights(result.runs, opts.plot_step, path))
        written += plots
        page = out / "report.html"
        page.write_text(html_report(result, [p.name for p in plots]))
        written.append(page)
    return written


def plot_forecast(run: Run, h: int, out: Path, several: bool) -> Path:
    """Actual vs the forecast issued ``plot_step`` events earlier, with its band."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fc = run.forecasts
    sid = fc.series[0] if len(fc) else ""
    idx = np.flatnonzero(np.array(fc.series, dtype=object) == sid)
    prev, _ = prior_index([fc.series[i] for i in idx.tolist()], h)
    src = prev[:, h - 1]
    ok = src >= 0
    tgt, src = idx[ok], idx[src[ok]]
    when = pd.to_datetime(fc.ts[tgt], unit="s", utc=True).tz_convert(None)
    fig, axes = plt.subplots(2, 1, figsize=(12, 7), layout="constrained")
    for ax, lo in ((axes[0], 0), (axes[1], max(0, tgt.size - ZOOM))):
        sl = slice(lo, None)
        ax.fill_between(when[sl], fc.lower[src[sl], h - 1], fc.upper[src[sl], h - 1],
                        color="tab:blue", alpha=0.25, linewidth=0,
                        label=f"{run.cfg.coverage:.0%} interval")  # fmt: skip
        ax.plot(when[sl], fc.value[tgt[sl]], color="black", linewidth=0.7, label="actual")
        ax.plot(when[sl], fc.yhat[src[sl], h - 1], color="tab:blue", linewidth=0.7,
                label=f"forecast +{h}")  # fmt: skip
        if fc.anomaly is not None:  # flagged events of the series, as red marks
            hit = fc.anomaly.flag[tgt[sl]]
            ax.plot(when[sl][hit], fc.value[tgt[sl]][hit], "o", color="tab:red", markersize=4,
                    fillstyle="none", label="anomaly")  # fmt: skip
        ax.set_ylabel("value")
        ax.grid(alpha=0.3)
        _mark_retrains(ax, retrain_starts(run, idx[0]) if idx.size else {}, when[sl])
        locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    axes[0].set_title(f"{run.label}: series {sid!r}, forecast {h} step(s) ahead (whole replay)")
    axes[1].set_title(f"the last {min(ZOOM, tgt.size)} events")
    axes[0].legend(loc="upper left", fontsize=8)
    name = f"forecast-{run.label}.png" if several else "forecast.png"
    path = out / name
    fig.savefig(path, dpi=100, metadata=_PNG_META)
    plt.close(fig)
    return path


def retrain_starts(run: Run, row: int) -> dict[str, F64Array]:
    """Event times at which the retrains of ``row``'s partition started, by reason."""
    fc = run.forecasts
    where = (fc.source[row], int(fc.partition[row]))
    mine = np.flatnonzero((np.array(fc.source, dtype=object) == where[0])
                          & (fc.partition == where[1]))  # fmt: skip
    out: dict[str, list[float]] = {}
    for entry in run.history.retrain_log:
        n = int(entry["started_at"])
        if (entry["source"], entry["partition"]) == where and 0 < n <= mine.size:
            out.setdefault(entry["reason"], []).append(float(fc.ts[mine[n - 1]]))
    return {k: np.array(v) for k, v in out.items()}


def _mark_retrains(ax: Any, starts: dict[str, F64Array], when: pd.DatetimeIndex) -> None:
    """Dotted vertical lines where retrains started, within the plotted span."""
    if not len(when):
        return
    for reason, ts in starts.items():
        at = pd.to_datetime(ts, unit="s", utc=True).tz_convert(None)
        at = at[(at >= when[0]) & (at <= when[-1])]
        color = REASON_COLORS.get(reason, "black")
        for i, t in enumerate(at):
            label = f"retrain started ({reason})" if i == 0 else None
            ax.axvline(t, color=color, linestyle=":", linewidth=0.8, alpha=0.7, label=label)


def plot_error_by_horizon(result: Replay, path: Path) -> Path:
    """MAE per step ahead (all series) of every configuration and baseline."""
    import matplotlib.pyplot as plt

    scores = pd.concat([r.scores for r in result.runs], ignore_index=True)
    scores = scores[scores["series"] == "*"].drop_duplicates(subset=["model", "step"])
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    models = [r.label for r in result.runs] + list(BASELINES)
    styles = ["-o"] * len(result.runs) + ["--s", "-.^", ":v"]  # overlaps stay visible
    for model, style in zip(models, styles, strict=True):
        sub = scores[scores["model"] == model].sort_values("step")
        ax.plot(sub["step"], sub["mae"], style, markersize=4, label=model, alpha=0.85)
    ax.set_xlabel("steps ahead")
    ax.set_ylabel("MAE")
    positive = scores["mae"][scores["mae"] > 0]
    if len(positive) and positive.max() > 5 * positive.min():
        ax.set_yscale("log")  # one far-off baseline would flatten the others
        ax.set_ylabel("MAE (log scale)")
    ax.set_title("Error by horizon (prequential MAE, after the warm-up)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=100, metadata=_PNG_META)
    plt.close(fig)
    return path


def plot_training_loss(runs: list[Run], path: Path) -> Path:
    """Per retrain: training loss, and validation loss of the old and new weights."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    for i, run in enumerate(runs):
        log = pd.DataFrame(run.history.retrain_log)
        color = f"C{i}"
        if log.empty:
            continue
        x = log["at_event"].to_numpy()
        ax.plot(x, log["train_loss"], "-o", color=color, markersize=3,
                label=f"{run.label}: training loss")  # fmt: skip
        ax.plot(x, log["val_loss_after"], ":", color=color,
                label=f"{run.label}: validation loss, new weights")  # fmt: skip
        ax.plot(x, log["val_loss_before"], "--", color=color, alpha=0.5,
                label=f"{run.label}: validation loss, old weights")  # fmt: skip
        rejected = log["accepted"].to_numpy() == 0
        if rejected.any():
            ax.plot(x[rejected], log["val_loss_after"].to_numpy()[rejected], "x", color=color,
                    markersize=8, label=f"{run.label}: rejected retrain")  # fmt: skip
    ax.set_xlabel("events learned (at the swap)")
    ax.set_ylabel(f"loss ({runs[0].cfg.loss}, scaled changes)")
    ax.set_title("Training loss over retrains")
    ax.grid(alpha=0.3)
    if any(r.history.retrain_log for r in runs):
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no retrains in this replay", ha="center", transform=ax.transAxes)
    fig.savefig(path, dpi=100, metadata=_PNG_META)
    plt.close(fig)
    return path


def plot_expert_weights(runs: list[Run], h: int, path: Path) -> Path:
    """The pooled weight of each expert at step ``h`` over the replay, one panel per run."""
    import matplotlib.pyplot as plt

    traces = [(run.label, run.history) for run in runs if run.history.expert_weights]
    fig, axes = plt.subplots(len(traces), 1, figsize=(12, 3.5 * len(traces)), squeeze=False,
                             layout="constrained")  # fmt: skip
    for ax, (label, hist) in zip(axes[:, 0], traces, strict=True):
        events = [n for n, _ in hist.expert_weights]
        weights = np.array([w[h - 1] for _, w in hist.expert_weights]).T  # (E, samples)
        ax.stackplot(events, weights, labels=hist.expert_names, alpha=0.85)
        ax.set_ylim(0.0, 1.0)
        ax.set_xlabel("events learned")
        ax.set_ylabel(f"weight at +{h}")
        ax.set_title(f"{label}: pooled expert weights at +{h} (ML-Poly)")
        ax.legend(fontsize=7, ncol=5, loc="upper left")
    fig.savefig(path, dpi=100, metadata=_PNG_META)
    plt.close(fig)
    return path


def _table(df: pd.DataFrame) -> str:
    return str(df.to_html(index=False, float_format=lambda x: f"{x:.4g}", border=0))


def html_report(result: Replay, plots: list[str]) -> str:
    """One page: what was replayed, the scores per step, the ranking, plots and links."""
    s = result.summary
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>forecaster replay</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{padding:2px 8px;text-align:right}"
        "img{max-width:100%}</style></head><body>",
        "<h1>forecaster replay</h1>",
        f"<p>{s['rows']:,} rows from {esc(', '.join(s['files']))}: {s['events']:,} events in "
        f"{s['series']} series forecast, rejected {esc(json.dumps(s['rejected']))}, "
        f"{s['duplicate_times']} duplicate times, {s['gaps']} gaps. Scored after a "
        f"{s['warmup']:.0%} warm-up per series; seasonal naive season {s['season']} events.</p>",
        f"<p>Parse {s['parse_seconds']:.2f} s, replay {s['replay_seconds']:.2f} s: "
        f"<b>{s['events_per_second']:,.0f} events/s</b> including parsing.</p>",
    ]
    if s["ranking"]:
        parts += ["<h2>Configurations, best first (mean MASE over steps)</h2>",
                  _table(pd.DataFrame(s["ranking"]))]  # fmt: skip
    for run in result.runs:
        sc = run.scores[run.scores["series"] == "*"]
        wide = sc.pivot_table(index="step", columns="model", values="mae", sort=False)
        own = sc[sc["model"] == run.label].set_index("step")
        table = pd.DataFrame({"step": own.index, **{m: own[m].to_numpy() for m in
                              ("mae", "rmse", "smape", "mase", "coverage")}})  # fmt: skip
        for b in BASELINES:
            table[f"{b} MAE"] = wide.loc[own.index, b].to_numpy()
        parts += [f"<h2>{esc(run.label)}: scores per step ahead (all series)</h2>", _table(table)]
        per = run.scores[(run.scores["series"] != "*") & (run.scores["model"] == run.label)]
        if not per.empty:
            k = int(per["step"].max())
            agg = per.groupby("series", sort=True).agg(
                mae_1=("mae", "first"), mae_k=("mae", "last"), mase=("mase", "mean"),
                coverage=("coverage", "mean"), n=("n", "max"),
            )  # fmt: skip
            names = {"mae_1": "MAE +1", "mae_k": f"MAE +{k}", "mase": "mean MASE",
                     "coverage": "mean coverage"}  # fmt: skip
            agg = agg.rename(columns=names)
            parts += [f"<h3>{esc(run.label)}: per series</h3>", _table(agg.reset_index())]
    parts.append("<h2>Plots</h2>")
    parts += [f"<p><a href='{esc(p)}'><img src='{esc(p)}' alt='{esc(p)}'></a></p>" for p in plots]
    files = [Path(c["forecasts"]).name for c in s["configs"]] + ["scores.csv", "summary.json"]
    parts.append("<h2>Files</h2><ul>")
    parts += [f"<li><a href='{esc(f)}'>{esc(f)}</a></li>" for f in files]
    parts.append("</ul></body></html>\n")
    return "\n".join(parts)
