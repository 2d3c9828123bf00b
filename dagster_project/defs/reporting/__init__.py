"""Reporting: the daily reconciliation report for finance, its metrics, and run-failure alerts."""
