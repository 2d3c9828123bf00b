"""Deterministic demo data for the order reconciliation platform (see generator.generate)."""

from ingestion.demo.contract_breaks import expected_contract_breaks
from ingestion.demo.generator import GenerationSummary, generate
from ingestion.demo.ground_truth import expected_diffs

__all__ = ["GenerationSummary", "expected_contract_breaks", "expected_diffs", "generate"]
