"""Report tables on the terminal: what ``forecaster replay`` and the benchmarks print."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table


def wide_console(min_width: int = 110) -> Console:
    """Standard output, at least ``min_width`` columns wide so report tables never wrap."""
    return Console(width=max(Console().width, min_width))


def report_table(
    title: str,
    columns: Sequence[str],
    left: Sequence[str] = (),
    rows: Iterable[Sequence[str]] = (),
) -> Table:
    """A report table of ``rows``: ``left`` columns left-aligned, the figures right-aligned."""
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="left" if col in left else "right")
    for row in rows:
        table.add_row(*row)
    return table


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object with every figure."
)


def print_json(result: Any, as_json: bool) -> bool:
    """With ``--json``: print ``result`` as one JSON object and say so (no table follows)."""
    if as_json:
        click.echo(json.dumps(result, indent=2))
    return as_json
