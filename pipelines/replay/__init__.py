"""``forecaster replay``: recorded events through the service's loop, scored and reported."""
