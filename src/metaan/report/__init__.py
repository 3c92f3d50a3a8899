"""Reproducible reports: a declared specification builds HTML, PDF, JSON, CSV and figures."""
