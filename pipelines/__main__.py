"""``python -m pipelines``: the ``forecaster`` command."""

from __future__ import annotations

from pipelines.cli import main

main()
