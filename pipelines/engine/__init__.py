"""The run loop and its types: batches, records, sources, sinks, partition tasks, checkpoints.

Shared by live serving and replay; it knows no Kafka, no files and no metrics library.
"""
