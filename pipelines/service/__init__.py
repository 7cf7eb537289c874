"""``forecaster run`` and ``feed``: settings, assembly, metrics, the HTTP endpoint, the console."""
