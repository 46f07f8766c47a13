"""cefpipe: Contrast Protect CEF from syslog through Kafka into Microsoft Sentinel."""

__version__ = "0.1.0"
