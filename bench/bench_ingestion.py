"""Landing rate and peak memory of the ingestion connectors.

Each case runs in its own process (peak resident memory = that process's ru_maxrss) and lands into a
fresh DuckDB file:

- parquet: file_drop, one Parquet file of N rows (default 10M: the bounded-memory case)
- csv, jsonl: file_drop, one file of N rows
- protocol: an external Airbyte "connector" (``cat`` of a file of RECORD messages, so the cost
  measured is the platform's: parsing, batching, typing, landing)

Usage: ``python bench/bench_ingestion.py [--rows-parquet 10000000] [--rows 2000000] [--records 1000000]``
Prints one JSON line per case and a machine description.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _make_files(root: Path, rows: int, rows_parquet: int, records: int) -> None:
    import duckdb

    con = duckdb.connect()
    gen = (
        "SELECT 'o' || i AS order_id, 'c' || (i % 1000) AS customer_id, (i % 100000) / 100.0 AS total, 'EUR' AS currency, "
        "TIMESTAMP '2026-10-01' + INTERVAL (i) SECOND AS updated_at, i % 7 AS line_count FROM range({n}) t(i)"
    )
    (root / "parquet").mkdir()
    (root / "csv").mkdir()
    (root / "jsonl").mkdir()
    con.execute(f"COPY ({gen.format(n=rows_parquet)}) TO '{root}/parquet/orders.parquet' (FORMAT parquet)").fetchall()
    con.execute(f"COPY ({gen.format(n=rows)}) TO '{root}/csv/orders.csv' (FORMAT csv, HEADER)").fetchall()
    con.execute(f"COPY ({gen.format(n=rows)}) TO '{root}/jsonl/orders.jsonl' (FORMAT json)").fetchall()
    con.execute(
        f"COPY (SELECT json_object('type', 'RECORD', 'record', json_object('stream', 'orders', 'emitted_at', 0, "
        f"'data', json_object('order_id', order_id, 'customer_id', customer_id, 'total', total, 'currency', currency, "
        f"'updated_at', strftime(updated_at, '%Y-%m-%dT%H:%M:%SZ'), 'line_count', line_count))) AS m "
        f"FROM ({gen.format(n=records)})) TO '{root}/messages.jsonl' (FORMAT csv, HEADER false, QUOTE '', DELIMITER '\\t')"
    ).fetchall()
    with open(root / "messages.jsonl", "a") as fh:
        fh.write(json.dumps({"type": "STATE", "state": {"type": "STREAM", "stream": {
            "stream_descriptor": {"name": "orders"}, "stream_state": {"done": True}}}}) + "\n")


def _case(kind: str, root: str, rows: int) -> None:
    import duckdb

    from ingestion.connectors import ConnectorStream
    from ingestion.sources.file_drop import FileDropStream
    from ingestion.sync import sync_stream

    con = duckdb.connect(str(Path(root) / f"{kind}.duckdb"))
    con.execute("SET memory_limit = '1GB'").fetchall()
    con.execute("SET preserve_insertion_order = false").fetchall()
    if kind == "protocol":
        catalog = Path(root) / "catalog_connector.py"
        catalog.write_text(
            "import json,sys,shutil\n"
            "if sys.argv[1]=='discover':\n"
            " print(json.dumps({'type':'CATALOG','catalog':{'streams':[{'name':'orders','json_schema':{'type':'object',"
            "'properties':{'order_id':{'type':'string'},'customer_id':{'type':'string'},'total':{'type':'number'},"
            "'currency':{'type':'string'},'updated_at':{'type':'string','format':'date-time'},'line_count':{'type':'integer'}}},"
            "'supported_sync_modes':['full_refresh']}]}}))\n"
            "else:\n"
            f" shutil.copyfileobj(open({str(Path(root) / 'messages.jsonl')!r},'rb'), sys.stdout.buffer)\n"
        )
        stream = ConnectorStream("bench", "orders", "airbyte_command",
                                 {"command": [sys.executable, str(catalog)], "streams": {"orders": {"sync_mode": "full_refresh_append"}}},
                                 ["order_id"], None)
    else:
        stream = FileDropStream(system="bench", stream="orders", path=Path(root) / kind, glob=f"*.{kind}",
                                format=kind, primary_key=["order_id"])  # type: ignore[arg-type]
    t0 = time.perf_counter()
    r = sync_stream(con, stream)
    seconds = time.perf_counter() - t0
    assert r.records_landed == rows, (r.records_landed, rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"case": kind, "rows": rows, "seconds": round(seconds, 2),
                      "rows_per_second": round(rows / seconds), "peak_rss_mib": round(peak)}))


def machine() -> dict[str, object]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    mem = next((line.split()[1] for line in meminfo if line.startswith("MemTotal")), "0")
    import duckdb

    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(int(mem) / 1024**2, 1),
            "python": platform.python_version(), "duckdb": duckdb.__version__, "os": platform.platform()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows-parquet", type=int, default=10_000_000)
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--case")
    p.add_argument("--root")
    p.add_argument("--n", type=int)
    a = p.parse_args()
    if a.case:
        _case(a.case, a.root, a.n)
        return
    print(json.dumps({"machine": machine()}))
    with tempfile.TemporaryDirectory(prefix="recon-bench-") as root:
        _make_files(Path(root), a.rows, a.rows_parquet, a.records)
        for kind, n in (("parquet", a.rows_parquet), ("csv", a.rows), ("jsonl", a.rows), ("protocol", a.records)):
            subprocess.run([sys.executable, __file__, "--case", kind, "--root", root, "--n", str(n)], check=True,
                           env={**os.environ, "PYTHONPATH": str(REPO)})


if __name__ == "__main__":
    main()
