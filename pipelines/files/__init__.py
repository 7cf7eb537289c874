"""Recorded events in CSV and Parquet files, and local copies of the forecasts."""
