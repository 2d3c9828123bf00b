"""Benchmark: the dbt build of one as-of day, and of the next day after it, on N generated orders.

Usage:
    .venv/bin/python bench/bench_dbt.py --orders 1000000 --days 30 --workdir /tmp/recon-bench

Generates the demo systems' exports (skipped when the workdir already has them), lands every stream
with the file-drop connector, then times ``dbt build`` (the nightly command: models and data tests,
unit tests excluded) for the second-to-last day and for the last day. Prints a JSON line with the
machine, sizes and timings; docs/performance.md records the results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/recon-bench"))
    args = parser.parse_args()

    work = args.workdir.resolve()
    os.environ["RECON_HOME"] = str(work / "home")
    os.environ["RECON_DEMO_DATA"] = str(work / "data")
    from dagster_project.defs.ingestion.assets import file_drop_stream
    from dagster_project.lib.config import DEMO_CONFIG_PATH, load_config
    from dagster_project.lib.dbt_project import AS_OF_DATE_ENV, get_dbt_project, set_dbt_env
    from dagster_project.lib.duckdb_resource import connect
    from ingestion.demo.generator import generate
    from ingestion.sync import sync_stream

    config = load_config(DEMO_CONFIG_PATH)
    start = config.project.start_date
    timings: dict[str, float] = {}
    data = work / "data"
    if not (data / "manifest.json").exists():
        t = time.perf_counter()
        generate(data, orders=args.orders, days=args.days, seed=args.seed, start_date=start,
                 rules=config.rules.model_dump(mode="json", by_alias=True))
        timings["generate_s"] = time.perf_counter() - t
    manifest = json.loads((data / "manifest.json").read_text())
    last = dt.date.fromisoformat(manifest["end_date"])

    rows = 0
    if not config.duckdb_path.exists():
        t = time.perf_counter()
        con = connect(config.duckdb_path)
        for name, system in sorted(config.systems.items()):
            for stream in sorted(system.streams):
                rows += sync_stream(con, file_drop_stream(name, system, stream)).records_landed
        con.close()
        timings["land_s"] = time.perf_counter() - t

    get_dbt_project(config)
    set_dbt_env(config)
    dbt = str(Path(sys.executable).with_name("dbt"))
    base = [dbt, "build", "--project-dir", str(ROOT / "dbt_project"), "--profiles-dir", str(ROOT / "dbt_project"),
            "--vars", json.dumps(config.dbt_vars(), sort_keys=True), "--exclude", "test_type:unit", "--quiet"]
    for label, day in (("build_day_s", last - dt.timedelta(days=1)), ("build_next_day_s", last)):
        env = {**os.environ, AS_OF_DATE_ENV: day.isoformat()}
        t = time.perf_counter()
        subprocess.run(base, check=True, env=env)
        timings[label] = round(time.perf_counter() - t, 2)

    con = connect(config.duckdb_path, read_only=True)
    orders = con.execute("select count(*) from marts.fct_orders").fetchall()[0][0]
    diffs = con.execute("select count(*) from marts.fct_order_diffs where as_of_date = ?", [last]).fetchall()[0][0]
    con.close()
    print(json.dumps({
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "orders": args.orders, "days": args.days, "landed_rows": rows or None,
        "canonical_orders": orders, "diffs_last_day": diffs,
        **{k: round(v, 2) for k, v in timings.items()},
    }))


if __name__ == "__main__":
    main()
