"""Writes the collected records as one file per stream per day, with the file's mtime set to the
day's 23:59:59 UTC (the landing connector's `available_at`).

Two deliveries: ``daily`` (each day's file holds the records changed that day) and ``snapshot`` (each
day's file holds every record as of the end of that day, in its latest version: what a system that
re-sends a full export every night delivers; a record's identical copies inside one export, an
injected duplicated export row, stay copies).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
from datetime import date, timedelta
from operator import itemgetter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ingestion.demo.records import STREAMS, Sink

CSV_HEADERS = {
    "erp/documents": "DocNo,DocType,SalesOrder,Customer,Curr,NetAmount,Status,DocDate,ChangedOn",
    "crm/accounts": "AccountId,Segment,Plan,AccountOwner,ModifiedDate",
}
EXTENSIONS = {
    "shop/orders": "jsonl",
    "psp/charges": "jsonl",
    "psp/refunds": "jsonl",
    "erp/documents": "csv",
    "wms/shipments": "parquet",
    "crm/accounts": "csv",
}


@functools.cache
def wms_schema() -> pa.Schema:
    """The WMS shipments Parquet schema (built on first use, not at import)."""
    return pa.schema(
        [
            ("shipment_ref", pa.string()),
            ("order_no", pa.string()),
            ("kind", pa.string()),
            ("status", pa.string()),
            ("qty_lines", pa.int32()),
            ("event_time", pa.timestamp("us", tz="UTC")),
            ("modified_time", pa.timestamp("us", tz="UTC")),
        ]
    )


# How to read a stream's record key back from a rendered row (snapshot delivery).
_JSON_KEYS = {"shop/orders": "order_number", "psp/charges": "id", "psp/refunds": "id"}


def _key_of(stream: str, row: object) -> str:
    if stream == "wms/shipments":
        return str(row[0])  # type: ignore[index]
    if stream in _JSON_KEYS:
        return str(json.loads(row)[_JSON_KEYS[stream]])  # type: ignore[arg-type]
    return next(csv.reader(io.StringIO(row)))[0]  # type: ignore[arg-type]


def _snapshot(stream: str, rows: list) -> list:
    """Every record's latest version among `rows` ((sort_ts, row) pairs), with its identical copies."""
    latest: dict[str, int] = {}
    for ts, row in rows:
        key = _key_of(stream, row)
        if ts > latest.get(key, ts - 1):
            latest[key] = ts
    return [(ts, row) for ts, row in rows if latest[_key_of(stream, row)] == ts]


def clear_previous(out_dir: Path) -> None:
    """Remove files a previous run wrote into the stream folders (only names this writer uses)."""
    for stream, ext in EXTENSIONS.items():
        folder = out_dir / stream
        if folder.is_dir():
            for path in folder.glob(f"????-??-??.{ext}"):
                path.unlink()


def write_parquet_rows(path: Path, rows: list) -> None:
    """Write WMS shipment row tuples as one Parquet file (the WMS export's exact options)."""
    schema = wms_schema()
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in range(7)]
    table = pa.Table.from_arrays(
        [
            pa.array(cols[0], pa.string()),
            pa.array(cols[1], pa.string()),
            pa.array(cols[2], pa.string()),
            pa.array(cols[3], pa.string()),
            pa.array(cols[4], pa.int32()),
            pa.array([t * 1_000_000 for t in cols[5]], pa.int64()).cast(schema.field("event_time").type),
            pa.array([t * 1_000_000 for t in cols[6]], pa.int64()).cast(schema.field("modified_time").type),
        ],
        schema=schema,
    )
    pq.write_table(
        table, path, compression="snappy", version="2.6", use_dictionary=True, write_statistics=True
    )


def write_files(out_dir: Path, sink: Sink, start: date, days: int, delivery: str = "daily") -> dict[str, int]:
    """Write every stream's daily files; a system's outage days get no file.

    Args:
        out_dir: the output root.
        sink: the collected records.
        start: the first day of the window.
        days: number of days.
        delivery: ``daily`` (the day's changes) or ``snapshot`` (every record as of the day's end).

    Returns:
        Rows per written file, keyed by the path relative to `out_dir` (posix style).
    """
    counts: dict[str, int] = {}
    by_ts = itemgetter(0)
    for stream in STREAMS:
        system = stream.split("/", 1)[0]
        folder = out_dir / stream
        folder.mkdir(parents=True, exist_ok=True)
        gaps = sink.outages.get(system, set())
        buckets = sink.buckets[stream]
        if delivery not in ("daily", "snapshot"):
            raise ValueError(f"delivery must be daily or snapshot, got {delivery!r}")
        known: list = []
        for day in range(days):
            if delivery == "snapshot":
                known.extend(buckets.get(day, []))
            if day in gaps:
                continue
            # daily: sorted in place, the contract breaks writer re-reads the buckets in file order
            rows = _snapshot(stream, known) if delivery == "snapshot" else buckets.get(day, [])
            rows.sort(key=by_ts)  # stable: ties keep the order they were generated in
            day_date = start + timedelta(days=day)
            name = f"{day_date.isoformat()}.{EXTENSIONS[stream]}"
            path = folder / name
            if stream == "wms/shipments":
                write_parquet_rows(path, [row for _, row in rows])
            else:
                body = "\n".join(line for _, line in rows)
                if stream in CSV_HEADERS:
                    text = CSV_HEADERS[stream] + "\n" + (body + "\n" if rows else "")
                else:
                    text = body + "\n" if rows else ""
                path.write_bytes(text.encode("utf-8"))
            mtime_ns = (sink.start_ts + day * 86400 + 86399) * 1_000_000_000
            os.utime(path, ns=(mtime_ns, mtime_ns))
            counts[f"{stream}/{name}"] = len(rows)
    return counts
