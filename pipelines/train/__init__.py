"""``forecaster train`` and ``forecaster model show``: train once on recorded history.

:mod:`~pipelines.train.train` trains (a replay of every input merged into one
partition), and :mod:`~pipelines.train.command` holds the commands.
"""
