"""Kafka through kafka-python: client options, the consumer-group source, producer sinks."""
