"""Time the contract validation of one 10M-row landed stream (psp.charges shape) on DuckDB.

    .venv/bin/python bench/bench_contracts.py [--rows 10000000] [--bad-rate 0.001] [--keep]

Builds ``raw_psp.charges`` in a temporary DuckDB file with the connector's layout (source columns +
Airbyte columns), a small share of rows broken in several ways, then runs ``validate_stream`` twice:
read-only (GX only) and recording (GX + quarantine + violations + snapshot). Prints the timings;
the numbers are written down in docs/contracts.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from dagster_project.lib.config import DEMO_CONFIG_PATH, load_config  # noqa: E402
from dagster_project.lib.contracts.runner import validate_stream  # noqa: E402
from dagster_project.lib.contracts.suites import generate_suites  # noqa: E402
from dagster_project.lib.database import connect  # noqa: E402


def build(con, rows: int, bad_rate: float, now: dt.datetime) -> None:
    every = max(int(1 / bad_rate), 2) if bad_rate > 0 else 0
    base = int((now - dt.timedelta(days=1)).timestamp())
    bad = f"(i % {every} = 0)" if every else "false"
    con.execute("create schema if not exists raw_psp")
    con.execute(f"""
        create or replace table raw_psp.charges as
        select
            case when {bad} and i % 7 = 0 then null else 'ch_' || i end as id,
            'charge' as object,
            case when {bad} and i % 7 = 1 then -100 else 100 + i % 100000 end::bigint as amount,
            case when {bad} and i % 7 = 2 then 'xx1' else 'eur' end as currency,
            case when {bad} and i % 7 = 3 then 'booked' else 'succeeded' end as status,
            'cus_' || (i % 50000) as customer,
            json_object('order_id', 'o' || i) as metadata,
            ({base} + i % 80000)::bigint as created,
            case when {bad} and i % 7 = 4 then {base} + 10 * 86400 else {base} + i % 80000 end::bigint as updated,
            'raw-' || i as _airbyte_raw_id,
            ?::timestamptz as _airbyte_extracted_at,
            '{{"sync_id": 1, "changes": []}}'::json as _airbyte_meta,
            0::bigint as _airbyte_generation_id,
            'file:///charges/' || (i // 1000000) || '.jsonl' as _ab_source_file_url,
            ?::timestamptz as _ab_source_file_last_modified
        from range({rows}) t(i)
    """, [now - dt.timedelta(hours=1), now - dt.timedelta(hours=2)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--bad-rate", type=float, default=0.001)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_contracts_"))
    os.environ["RECON_HOME"] = str(tmp / "home")
    config = load_config(DEMO_CONFIG_PATH)
    gx_dir = tmp / "expectations"
    generate_suites(config, gx_dir, system="psp")
    now = dt.datetime.now(dt.UTC)
    con = connect(config.duckdb_path)
    try:
        t0 = time.perf_counter()
        build(con, args.rows, args.bad_rate, now)
        print(f"built {args.rows:,} rows in {time.perf_counter() - t0:.1f}s")
        for record in (False, True):
            t0 = time.perf_counter()
            result = validate_stream(con, config, "psp", "charges", as_of_date=now.date(), now=now,
                                     expectations_dir=gx_dir, record=record)
            took = time.perf_counter() - t0
            print(f"validate (record={record}): {took:.1f}s, {len(result.outcomes)} expectations, "
                  f"{len(result.failures)} failed, quarantined rows {result.quarantined_rows:,}, "
                  f"errors {[o.rule_id for o in result.outcomes if o.error]}")
            for outcome in result.failures:
                print(f"    {outcome.rule_id}: {outcome.unexpected_count} (quarantined {outcome.quarantined})")
        print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    finally:
        con.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
