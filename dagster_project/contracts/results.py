"""What one contract validation found: :class:`ContractResult` (outcomes, drift, samples, verdict).

Pure data and wording, no database: the runner fills it, the Dagster check and the CLI show it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster_project.contracts.rules import EXTRACTED_AT, FILE_MODIFIED, RAW_ID

AIRBYTE_COLUMNS = {RAW_ID, EXTRACTED_AT, "_airbyte_meta", "_airbyte_generation_id", "_ab_source_file_url",
                   FILE_MODIFIED}


@dataclass
class Outcome:
    """The result of one expectation."""

    rule_id: str
    check: str
    column: str | None
    expectation_type: str
    blocking: bool
    success: bool
    description: str
    unexpected_count: int | None = None
    element_count: int | None = None
    observed_value: Any = None
    error: str | None = None
    quarantined: int | None = None
    row_level: bool = False
    quarantine: bool = False

    def message(self, system: str, stream: str) -> str:
        where = f"{system}.{stream}" + (f" column {self.column}" if self.column else "")
        if self.check == "column_exists" and not self.error:
            return f"{where}: missing from the landed table (staging reads it) [{self.rule_id}]"
        if self.check == "column_type" and not self.error and self.observed_value is not None:
            return f"{where}: landed as {self.observed_value}; expected: {self.description} [{self.rule_id}]"
        if self.error:
            detail = f"could not run: {self.error}"
        elif self.unexpected_count is not None:
            detail = f"{self.unexpected_count} of {self.element_count} row(s) break it"
        elif self.observed_value is not None:
            detail = f"observed {self.observed_value}"
        else:
            detail = "failed"
        return f"{where}: {self.description}: {detail} [{self.rule_id}]"


@dataclass
class DriftChange:
    """A column added, removed or retyped since the last accepted snapshot."""

    kind: str
    column: str
    old_type: str | None
    new_type: str | None
    blocking: bool

    def message(self, system: str, stream: str) -> str:
        what = {"added": f"added ({self.new_type})", "removed": f"removed (was {self.old_type})",
                "retyped": f"retyped {self.old_type} -> {self.new_type}"}[self.kind]
        return (f"{system}.{stream} column {self.column}: {what}"
                + (" - breaks the contract" if self.blocking else ""))


@dataclass
class ContractResult:
    """Everything one validation found; ``to_metadata`` feeds the Dagster check."""

    system: str
    stream: str
    suite: str
    table: str
    as_of_date: dt.date | None
    reference_time: dt.datetime
    outcomes: list[Outcome] = field(default_factory=list)
    drift: list[DriftChange] = field(default_factory=list)
    schema: dict[str, str] = field(default_factory=dict)
    row_count: int | None = None
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    quarantined_rows: int = 0
    violations_written: int = 0
    docs_path: Path | None = None  # GX Data Docs index, when built
    result_path: Path | None = None  # the GX validation result JSON, when written
    error: str | None = None
    suite_stale: bool = False
    notes: list[str] = field(default_factory=list)  # e.g. "generated contract suite for shop.orders at ..."
    seconds: float = 0.0
    column_fields: dict[str, list[str]] = field(default_factory=dict)  # source column -> canonical fields

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def blocking(self) -> bool:
        """True when going on would be meaningless: the run must stop downstream of this stream."""
        return (self.error is not None or any(o.blocking for o in self.failures)
                or any(d.blocking for d in self.drift))

    @property
    def passed(self) -> bool:
        return self.error is None and not self.failures and not any(d.blocking for d in self.drift)

    def messages(self) -> list[str]:
        """One line per problem, each naming the stream, the column and the cause; blocking ones first."""
        return [line for line, _ in self._lines()]

    def blocking_messages(self) -> list[str]:
        """The problems that block the run (what :meth:`hint` is about)."""
        return [line for line, blocking in self._lines() if blocking]

    def _lines(self) -> list[tuple[str, bool]]:
        out = [(f"{self.system}.{self.stream}: {self.error}", True)] if self.error else []
        out += [(d.message(self.system, self.stream) + self._mapped_by(d.column), d.blocking) for d in self.drift]
        # A missing column is the cause; the other rules on it only fail because of it.
        missing = {o.column for o in self.failures if o.check == "column_exists" and not o.error}
        consequences = [o for o in self.failures if o.column in missing and o.check != "column_exists"]
        for o in sorted(self.failures, key=lambda o: (not o.blocking, o.check != "column_exists")):
            if o in consequences:
                continue
            line = o.message(self.system, self.stream) + self._mapped_by(o.column)
            if o.check == "column_exists" and self.schema:
                landed = [c for c in self.schema if c not in AIRBYTE_COLUMNS]
                line += f"; {self.table} has columns {', '.join(landed)}"
                after = sum(c.column == o.column for c in consequences)
                if after:
                    line += f" ({after} more rule(s) on {o.column} not run because of it)"
            out.append((line, o.blocking))
        return out

    def _mapped_by(self, column: str | None) -> str:
        fields = self.column_fields.get(column or "")
        return f" (the config maps {', '.join(fields)} from it)" if fields else ""

    def hint(self) -> str | None:
        """What to run about a blocking failure (None when nothing blocks)."""
        if not self.blocking:
            return None
        where = f"systems.{self.system}.streams.{self.stream}"
        if self.error and "suite" in self.error:
            return "run `recon contracts generate` (the demo's suites: and commit them)"
        if self.error and "not found" in self.error:
            return (f"the stream has not landed: see the step raw/{self.system}/{self.stream} of the run and "
                    f"{where} (path, glob); `recon config validate --data` previews what it would land")
        return (f"fix {where}.fields (or the export), check with `recon contracts check --system {self.system}` "
                "and `recon config validate --data`, then run the day again")

    def to_metadata(self) -> dict[str, Any]:
        """Plain JSON-able metadata: counts, failing expectations, samples, drift, docs."""
        return {
            "suite": self.suite,
            "table": self.table,
            "as_of_date": str(self.as_of_date) if self.as_of_date else None,
            "row_count": self.row_count,
            "expectations": len(self.outcomes),
            "failed": len(self.failures),
            "failed_blocking": sum(o.blocking for o in self.failures) + sum(d.blocking for d in self.drift),
            "quarantined_rows": self.quarantined_rows,
            "failing_expectations": [
                {"rule_id": o.rule_id, "column": o.column, "expectation": o.expectation_type,
                 "blocking": o.blocking, "unexpected_count": o.unexpected_count,
                 "element_count": o.element_count, "observed_value": jsonable(o.observed_value),
                 "quarantined": o.quarantined, "error": o.error}
                for o in self.failures
            ],
            "schema_drift": [d.message(self.system, self.stream) for d in self.drift],
            "sample_failing_rows": self.samples,
            "messages": self.messages(),
            "hint": self.hint(),
            "notes": self.notes,
            "error": self.error,
            "suite_stale": self.suite_stale,
            "seconds": round(self.seconds, 3),
        }


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (dates, decimals and the like as text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return str(value)
