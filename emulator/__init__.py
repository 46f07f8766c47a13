"""A local stand-in for Entra ID and the Logs Ingestion API, over TLS."""
