"""Syslog listener that publishes each raw message to Kafka."""
