"""Benchmark: the dbt build of one as-of day, of the next night after it, and of a backfilled day, on N
generated orders, with as-of replays checked to be bit-identical.

Usage:
    .venv/bin/python bench/bench_dbt.py --orders 1000000 --days 30 --workdir /tmp/recon-bench

Generates the demo systems' exports into <workdir>/exports (skipped when they are there), then plays
the nights the way production does: the files of days 1..N-1 are dropped (hard links, mtimes kept)
and landed, and the day N-1 is built from scratch; then day N's files are dropped and landed and day
N is built (the nightly). Then it times a rerun of day N with nothing new, a backfill of the middle
day, and day N once more: the rerun and the replay of day N must equal the nightly exactly
(order-independent checksums of every per-record and per-order table, fct_orders, the order state
history and the day's diffs). Each build is the nightly command (models and data tests, unit tests
excluded). Prints one JSON line; docs/performance.md records the results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# What a rerun or an as-of replay of a day must leave exactly as the night's build did.
CHECKED_TABLES = [
    "intermediate.int_orders_current", "intermediate.int_payments_current", "intermediate.int_invoices_current",
    "intermediate.int_fulfillments_current", "intermediate.int_customers_current",
    "intermediate.int_source_keys_repeated", "intermediate.int_orders_aggregated",
    "intermediate.int_records_orphaned", "intermediate.int_order_diffs_candidates", "marts.fct_orders",
]
DIFF_COLUMNS = "order_id, diff_type, system, severity, expected_value, actual_value, amount_at_risk, owner"


def drop_files(exports: Path, drop: Path, last_day: dt.date) -> int:
    """Hard-link every export file of a day <= last_day into the drop folder (mtimes are kept)."""
    linked = 0
    for path in sorted(exports.rglob("*")):
        if not path.is_file() or path.parent == exports:
            continue
        try:
            day = dt.date.fromisoformat(path.stem[:10])
        except ValueError:
            continue
        target = drop / path.relative_to(exports)
        if day <= last_day and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
            linked += 1
    return linked


def checksums(db: Path, day: dt.date) -> dict[str, list]:
    from dagster_project.lib.database import connect

    con = connect(db, read_only=True)
    try:
        sums = {t: [int(v) if v is not None else None for v in con.execute(
            f"select count(*), sum(hash(t)::hugeint) from {t} as t").fetchall()[0]] for t in CHECKED_TABLES}
        sums["marts.fct_order_diffs (the day)"] = [int(v) if v is not None else None for v in con.execute(
            f"select count(*), sum(hash({DIFF_COLUMNS})::hugeint) from marts.fct_order_diffs where as_of_date = ?",
            [day]).fetchall()[0]]
        # the history's other days are not the day's to change (a backfill adds its own day's rows)
        sums["marts.fct_order_state_history (the day)"] = [int(v) if v is not None else None for v in con.execute(
            "select count(*), sum(hash(t)::hugeint) from marts.fct_order_state_history as t where as_of_date = ?",
            [day]).fetchall()[0]]
        return sums
    finally:
        con.close()


def slowest_nodes(run_results: Path, n: int = 10) -> dict[str, float]:
    """The n slowest nodes of a dbt invocation (seconds), from its run_results.json."""
    results = json.loads(run_results.read_text())["results"]
    results.sort(key=lambda r: -r["execution_time"])
    return {r["unique_id"].split(".")[2]: round(r["execution_time"], 2) for r in results[:n]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/recon-bench"))
    args = parser.parse_args()

    work = args.workdir.resolve()
    exports, drop, home = work / "exports", work / "drop", work / "home"
    shutil.rmtree(drop, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    os.environ["RECON_HOME"] = str(home)
    os.environ["RECON_DEMO_DATA"] = str(drop)
    from dagster_project.config.model import DEMO_CONFIG_PATH, load_config
    from dagster_project.dbt.dbt_project import AS_OF_DATE_ENV, DUCKDB_PATH_ENV, get_dbt_project, set_dbt_env
    from dagster_project.defs.ingestion.assets import file_drop_stream
    from dagster_project.lib.database import connect
    from ingestion.demo.generator import generate
    from ingestion.sync import sync_stream

    config = load_config(DEMO_CONFIG_PATH)
    timings: dict[str, float] = {}
    if not (exports / "manifest.json").exists():
        t = time.perf_counter()
        generate(exports, orders=args.orders, days=args.days, seed=args.seed, start_date=config.project.start_date,
                 rules=config.rules.model_dump(mode="json", by_alias=True))
        timings["generate_s"] = time.perf_counter() - t
    manifest = json.loads((exports / "manifest.json").read_text())
    last = dt.date.fromisoformat(manifest["end_date"])
    first_day, middle = last - dt.timedelta(days=1), last - dt.timedelta(days=args.days // 2)

    def land(label: str, up_to: dt.date) -> int:
        drop_files(exports, drop, up_to)
        t = time.perf_counter()
        con = connect(config.duckdb_path)
        rows = sum(sync_stream(con, file_drop_stream(name, system, stream)).records_landed
                   for name, system in sorted(config.systems.items()) for stream in sorted(system.streams))
        con.close()
        timings[label] = time.perf_counter() - t
        return rows

    project_dir = str(get_dbt_project(config).project_dir)
    set_dbt_env(config)
    dbt = str(Path(sys.executable).with_name("dbt"))
    base = [dbt, "build", "--project-dir", project_dir, "--profiles-dir", project_dir,
            "--vars", json.dumps(config.dbt_vars(), sort_keys=True), "--exclude", "test_type:unit", "--quiet"]

    def build(label: str, day: dt.date, db: Path = config.duckdb_path, *extra: str) -> None:
        env = {**os.environ, AS_OF_DATE_ENV: day.isoformat(), DUCKDB_PATH_ENV: str(db)}
        t = time.perf_counter()
        subprocess.run([*base, *extra], check=True, env=env)
        timings[label] = time.perf_counter() - t

    rows = land("land_first_s", first_day)
    build("build_day_s", first_day)                      # first build: everything from scratch
    rows += land("land_next_day_s", last)
    build("build_next_day_s", last)                      # the nightly
    nightly_results = Path(os.environ["DBT_TARGET_PATH"]) / "run_results.json"
    nightly_nodes = slowest_nodes(nightly_results)
    timings["build_next_day_dbt_elapsed_s"] = json.loads(nightly_results.read_text())["elapsed_time"]
    nightly = checksums(config.duckdb_path, last)
    con = connect(config.duckdb_path, read_only=True)
    night = {  # what the night changed: the orders whose tracked figures moved
        "orders_with_new_state_rows": con.execute("select count(*) from marts.fct_order_state_history "
                                                  "where as_of_date = ?", [last]).fetchall()[0][0],
    }
    con.close()
    build("rerun_next_day_s", last)                      # the same night again, nothing new
    rerun = checksums(config.duckdb_path, last)
    build("backfill_middle_day_s", middle)               # going back half the window
    build("replay_next_day_s", last)                     # and forward again: the same day N
    replay = checksums(config.duckdb_path, last)
    mismatches = sorted(t for t in nightly if rerun[t] != nightly[t] or replay[t] != nightly[t])
    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "orders": args.orders, "days": args.days, "landed_rows": rows,
        "canonical_orders": nightly["marts.fct_orders"][0], "diffs_last_day": nightly["marts.fct_order_diffs (the day)"][0],
        "next_day": night,
        **{k: round(v, 2) for k, v in timings.items()},
        "replays_identical": not mismatches, "mismatched_tables": mismatches,
        "nightly_slowest_nodes_s": nightly_nodes,
    }))
    if mismatches:
        sys.exit(1)


if __name__ == "__main__":
    main()
