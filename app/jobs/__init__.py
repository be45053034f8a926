"""Durable jobs in the index database (Orthanc's /jobs)."""
