"""Contracts domain: Great Expectations suites as Dagster asset checks on the landed streams."""
