"""Model files: train once on recorded history, start any partition from the file.

:mod:`~pipelines.models.file` reads and writes the format, :mod:`~pipelines.models.train`
trains (a replay of every input merged into one partition), and
:mod:`~pipelines.models.command` holds ``forecaster train`` and ``forecaster model show``.
"""
