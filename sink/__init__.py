"""Batches enriched rows and uploads them through the Logs Ingestion API."""
