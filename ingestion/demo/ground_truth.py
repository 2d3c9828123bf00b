"""Ground truth of the demo data: which diffs must show on which as-of day (ground_truth.csv, stale.csv).

`first_as_of_date`/`last_as_of_date` ignore staleness; `expected_diffs` applies the ON_HOLD rule of
docs/reconciliation-rules.md on top: a diff is not expected on a day when a system of one of its
involved roles is stale.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from ingestion.demo.records import SYSTEM_ROLES

GROUND_TRUTH_FILE = "ground_truth.csv"
STALE_FILE = "stale.csv"
MANIFEST_FILE = "manifest.json"
GROUND_TRUTH_HEADER = ("order_id", "diff_type", "system", "first_as_of_date", "last_as_of_date", "injected")

#: The `injected` description starts with its kind and a colon; this kind is the key-repeated rule.
KEY_REPEATED_KIND = "duplicate_key"


def involved_roles(diff_type: str, role: str, kind: str = "") -> frozenset[str]:
    """Roles involved in a diff (the "roles involved" column of the rules doc).

    Args:
        diff_type: the diff type.
        role: the role of the diff's system.
        kind: the injection kind; the key-repeated duplicate involves its own role only.

    Returns:
        The set of roles whose staleness suppresses the diff.
    """
    if diff_type == "missing_payment":
        return frozenset({"orders", "payments"})
    if diff_type == "missing_invoice":
        return frozenset({"payments", "invoices"})
    if diff_type == "missing_fulfillment":
        return frozenset({"payments", "fulfillments"})
    if diff_type == "unpaid_fulfillment":
        return frozenset({"orders", "payments", "fulfillments"})
    if diff_type == "status_conflict" and role == "invoices":
        return frozenset({"payments", "invoices"})
    if diff_type == "duplicate_record" and kind == KEY_REPEATED_KIND:
        return frozenset({role})
    if diff_type == "missing_enrichment":
        return frozenset({"orders", "customers"})
    return frozenset({"orders", role})


@dataclass(frozen=True, order=True)
class TruthRow:
    """One (order_id, diff_type, system) that shows from `first` to `last` (None: to the window end)."""

    first: date
    order_id: str
    diff_type: str
    system: str
    last: date | None
    injected: str

    @property
    def kind(self) -> str:
        """The injection kind (the part of `injected` before the colon)."""
        return self.injected.split(":", 1)[0]


def write_ground_truth(out_dir: Path, rows: list[TruthRow]) -> None:
    """Write ground_truth.csv, sorted by first day, then order, diff type and system."""
    with open(out_dir / GROUND_TRUTH_FILE, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(GROUND_TRUTH_HEADER)
        for row in sorted(rows, key=lambda r: (r.first, r.order_id, r.diff_type, r.system)):
            writer.writerow(
                (
                    row.order_id,
                    row.diff_type,
                    row.system,
                    row.first.isoformat(),
                    row.last.isoformat() if row.last else "",
                    row.injected,
                )
            )


def write_stale(out_dir: Path, stale: list[tuple[str, date]]) -> None:
    """Write stale.csv (system, as_of_date)."""
    with open(out_dir / STALE_FILE, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("system", "as_of_date"))
        for system, day in sorted(stale):
            writer.writerow((system, day.isoformat()))


def read_ground_truth(out_dir: Path) -> list[TruthRow]:
    """Read ground_truth.csv back into rows."""
    with open(Path(out_dir) / GROUND_TRUTH_FILE, newline="", encoding="utf-8") as fh:
        return [
            TruthRow(
                first=date.fromisoformat(rec["first_as_of_date"]),
                order_id=rec["order_id"],
                diff_type=rec["diff_type"],
                system=rec["system"],
                last=date.fromisoformat(rec["last_as_of_date"]) if rec["last_as_of_date"] else None,
                injected=rec["injected"],
            )
            for rec in csv.DictReader(fh)
        ]


def read_stale(out_dir: Path) -> set[tuple[str, date]]:
    """Read stale.csv into a set of (system, as_of_date)."""
    with open(Path(out_dir) / STALE_FILE, newline="", encoding="utf-8") as fh:
        return {(rec["system"], date.fromisoformat(rec["as_of_date"])) for rec in csv.DictReader(fh)}


def expected_diffs(out_dir: Path, as_of: date) -> set[tuple[str, str, str]]:
    """The (order_id, diff_type, system) rows the diff model must produce as of `as_of`.

    Args:
        out_dir: a directory written by `generate`.
        as_of: an as-of day inside the generated window.

    Returns:
        Every ground-truth diff showing on `as_of` whose involved roles have no stale system that day.
    """
    out_dir = Path(out_dir)
    manifest = json.loads((out_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    start = date.fromisoformat(manifest["start_date"])
    end = date.fromisoformat(manifest["end_date"])
    if not start <= as_of <= end:
        raise ValueError(f"as_of {as_of} is outside the generated window {start}..{end}")
    systems_by_role: dict[str, list[str]] = {}
    for system, role in manifest.get("systems", SYSTEM_ROLES).items():
        systems_by_role.setdefault(role, []).append(system)
    role_of = {system: role for role, systems in systems_by_role.items() for system in systems}
    stale_today = {system for system, day in read_stale(out_dir) if day == as_of}
    result: set[tuple[str, str, str]] = set()
    for row in read_ground_truth(out_dir):
        if row.first > as_of or (row.last is not None and row.last < as_of):
            continue
        roles = involved_roles(row.diff_type, role_of.get(row.system, ""), row.kind)
        if any(system in stale_today for role in roles for system in systems_by_role.get(role, ())):
            continue
        result.add((row.order_id, row.diff_type, row.system))
    return result


def window_days(start: date, days: int) -> list[date]:
    """The as-of days of a window."""
    return [start + timedelta(days=i) for i in range(days)]
