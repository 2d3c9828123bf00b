"""Sources: Airbyte-shaped connectors that read into the destination's DuckDB connection."""

from ingestion.sources.file_drop import FileDropStream, SourceFileDrop

__all__ = ["FileDropStream", "SourceFileDrop"]
