"""The application: sources, sinks, the run loop, checkpoints, telemetry and the CLI."""
